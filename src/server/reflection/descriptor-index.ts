import {
  createFileRegistry,
  toBinary,
  type DescEnum,
  type DescFile,
  type DescMessage,
  type DescService,
  type FileRegistry,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

/**
 * Lookup tables over the files that define the served services and everything they
 * import, built once when the server is built: server reflection answers every request
 * from them without walking descriptors per call.
 */
export class DescriptorIndex {
  /** Fully-qualified names of the served services, in the order given. */
  readonly serviceNames: readonly string[];
  readonly #registry: FileRegistry;
  readonly #fileBySymbol = new Map<string, DescFile>();
  /** Extendee type name -> extension number -> file declaring the extension. */
  readonly #extensions = new Map<string, Map<number, DescFile>>();
  readonly #serialized = new Map<string, Uint8Array>();

  constructor(services: readonly DescService[]) {
    this.serviceNames = [...new Set(services.map((service) => service.typeName))];
    this.#registry = registryOf(new Set(services.map((service) => service.file)));
    for (const type of this.#registry) {
      this.#fileBySymbol.set(type.typeName, type.file);
      switch (type.kind) {
        case "message":
          this.#indexMessageMembers(type);
          break;
        case "enum":
          this.#indexEnumValues(type);
          break;
        case "service":
          for (const method of type.methods) this.#fileBySymbol.set(`${type.typeName}.${method.name}`, type.file);
          break;
        case "extension": {
          let numbers = this.#extensions.get(type.extendee.typeName);
          if (!numbers) {
            numbers = new Map();
            this.#extensions.set(type.extendee.typeName, numbers);
          }
          numbers.set(type.number, type.file);
          break;
        }
      }
    }
  }

  /**
   * The file with this name as imported, `.proto` included (`telemed/patient/v1/patient.proto`);
   * note that `DescFile.name` drops the suffix, `file.proto.name` keeps it.
   */
  fileByName(name: string): DescFile | undefined {
    return this.#registry.getFile(name);
  }

  /**
   * The file defining a fully-qualified symbol: a service, method, message, field,
   * oneof, enum, enum value or extension. No leading dot, as the reflection protocol has it.
   */
  fileContainingSymbol(symbol: string): DescFile | undefined {
    return this.#fileBySymbol.get(symbol);
  }

  /** The file declaring extension `number` of the message `extendee`. */
  fileContainingExtension(extendee: string, number: number): DescFile | undefined {
    return this.#extensions.get(extendee)?.get(number);
  }

  /** The known extension numbers of a message, ascending; undefined if the message is unknown. */
  extensionNumbersOf(extendee: string): number[] | undefined {
    if (!this.#registry.getMessage(extendee)) return undefined;
    return [...(this.#extensions.get(extendee)?.keys() ?? [])].sort((a, b) => a - b);
  }

  /** The file as a serialized google.protobuf.FileDescriptorProto, encoded once. */
  serialized(file: DescFile): Uint8Array {
    let bytes = this.#serialized.get(file.proto.name);
    if (!bytes) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      this.#serialized.set(file.proto.name, bytes);
    }
    return bytes;
  }

  #indexMessageMembers(message: DescMessage): void {
    for (const field of message.fields) this.#fileBySymbol.set(`${message.typeName}.${field.name}`, message.file);
    for (const oneof of message.oneofs) this.#fileBySymbol.set(`${message.typeName}.${oneof.name}`, message.file);
  }

  /** Enum values are scoped like C++ enumerators: siblings of their enum, not children. */
  #indexEnumValues(enumType: DescEnum): void {
    const scope = enumType.typeName.slice(0, Math.max(0, enumType.typeName.lastIndexOf(".")));
    for (const value of enumType.values) {
      this.#fileBySymbol.set(scope ? `${scope}.${value.name}` : value.name, enumType.file);
    }
  }
}

/**
 * One registry over the given files and all their transitive imports. Each file is
 * re-read from its descriptor with the generated descriptors as imports, which pulls
 * those in with their own imports, then the per-file registries are merged; nested
 * messages, enums and extensions come with their files.
 */
function registryOf(files: ReadonlySet<DescFile>): FileRegistry {
  const perFile = [...files].map((file) =>
    createFileRegistry(file.proto, (name) => file.dependencies.find((dependency) => dependency.proto.name === name)),
  );
  return createFileRegistry(...perFile);
}
