import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { createHash } from "node:crypto";
import { type Image, ImageSchema, type Study, StudySchema } from "../../gen/telemed/xray/v1/xray_pb.js";
import type { Clock } from "../shared/clock.ts";
import { renderXrayPng } from "./png-image.ts";
import { SeededRandom } from "./seeded-random.ts";
import { invalidField, notFound } from "./simulator-errors.ts";

/** A study to add: who, what and when; one image unless said otherwise. */
export interface NewStudy {
  /** `patients/{patient}`. */
  readonly patientReference: string;
  readonly bodyPart?: string;
  readonly view?: string;
  /** When the images were taken; now when unset. */
  readonly acquireTime?: Date;
  readonly imageCount?: number;
  /** Image size in pixels; 768x640 (a PNG of ~400 KB) when unset. */
  readonly widthPx?: number;
  readonly heightPx?: number;
}

interface StoredImage {
  readonly name: string;
  readonly fileName: string;
  readonly widthPx: number;
  readonly heightPx: number;
  readonly seed: number;
  readonly description: string;
  /** Rendered on first use: seeded studies cost nothing until someone reads them. */
  file?: { readonly bytes: Buffer; readonly sha256: string };
}

interface StoredStudy {
  readonly name: string;
  readonly patientReference: string;
  readonly bodyPart: string;
  readonly view: string;
  readonly acquireMs: number;
  readonly images: StoredImage[];
}

/** The patient the seeded studies belong to, for trying the service by hand. */
export const demoPatientReference = "patients/demo-patient";

const patientPattern = /^patients\/[A-Za-z0-9_-]{1,64}$/;

/**
 * The X-ray Service's studies and image files, in memory. Images are real PNG files
 * rendered in code; they are immutable, so their SHA-256 is computed once. Tests add
 * studies for their own patients with `addStudy`, and can make the next download
 * break part-way with `interruptNextDownload` to exercise resuming.
 */
export class XraySimulator {
  readonly #clock: Clock;
  readonly #random: SeededRandom;
  readonly #studies = new Map<string, StoredStudy>();
  readonly #images = new Map<string, StoredImage>();
  #interruptAfterBytes: number | undefined;

  constructor(options: { clock: Clock; random: SeededRandom }) {
    this.#clock = options.clock;
    this.#random = options.random;
    const day = 86_400_000;
    const now = this.#clock.now().getTime();
    this.#store({ patientReference: demoPatientReference, view: "PA", acquireTime: new Date(now - 40 * day) });
    this.#store({
      patientReference: demoPatientReference,
      view: "PA and lateral",
      acquireTime: new Date(now - 3 * day),
      imageCount: 2,
    });
  }

  /** Adds a study for a patient and returns it with its images' metadata (size, SHA-256). */
  addStudy(input: NewStudy): Study {
    return this.#toStudy(this.#store(input));
  }

  #store(input: NewStudy): StoredStudy {
    if (!patientPattern.test(input.patientReference)) {
      throw invalidField("patient_reference", "must be patients/{patient}");
    }
    const id = this.#random.id(16);
    const name = `studies/${id}`;
    const bodyPart = input.bodyPart ?? "chest";
    const images: StoredImage[] = [];
    for (let i = 1; i <= (input.imageCount ?? 1); i++) {
      const image: StoredImage = {
        name: `${name}/images/${i}`,
        fileName: `${bodyPart}-${id}-${i}.png`,
        widthPx: input.widthPx ?? 768,
        heightPx: input.heightPx ?? 640,
        seed: this.#random.int(2 ** 32),
        description: `${bodyPart} ${input.view ?? "PA"} (simulated radiograph)`,
      };
      images.push(image);
      this.#images.set(image.name, image);
    }
    const study: StoredStudy = {
      name,
      patientReference: input.patientReference,
      bodyPart,
      view: input.view ?? "PA",
      acquireMs: (input.acquireTime ?? this.#clock.now()).getTime(),
      images,
    };
    this.#studies.set(name, study);
    return study;
  }

  /** A study with its images' metadata; NOT_FOUND when there is none. */
  study(name: string): Study {
    const study = this.#studies.get(name);
    if (!study) throw notFound("Study", name);
    return this.#toStudy(study);
  }

  /** A patient's studies, newest first (by acquisition time, then name). */
  studies(patientReference: string): Study[] {
    return [...this.#studies.values()]
      .filter((s) => s.patientReference === patientReference)
      .sort((a, b) => b.acquireMs - a.acquireMs || b.name.localeCompare(a.name))
      .map((s) => this.#toStudy(s));
  }

  /** One image's metadata; NOT_FOUND when there is none. */
  image(name: string): Image {
    return this.#toImage(this.#find(name));
  }

  /** The image's metadata and its file bytes (tests compare downloads with them). */
  file(name: string): { image: Image; bytes: Buffer } {
    const image = this.#find(name);
    return { image: this.#toImage(image), bytes: this.#render(image).bytes };
  }

  /** Test driver: the next download fails with UNAVAILABLE after sending about this many bytes. */
  interruptNextDownload(afterBytes: number): void {
    this.#interruptAfterBytes = afterBytes;
  }

  /** Takes the pending interruption, if any (the download handler asks once per call). */
  takeInterruption(): number | undefined {
    const after = this.#interruptAfterBytes;
    this.#interruptAfterBytes = undefined;
    return after;
  }

  #find(name: string): StoredImage {
    const image = this.#images.get(name);
    if (!image) throw notFound("Image", name);
    return image;
  }

  #render(image: StoredImage): { bytes: Buffer; sha256: string } {
    if (!image.file) {
      const bytes = renderXrayPng({
        width: image.widthPx,
        height: image.heightPx,
        random: new SeededRandom(image.seed),
        description: image.description,
      });
      image.file = { bytes, sha256: createHash("sha256").update(bytes).digest("hex") };
    }
    return image.file;
  }

  #toImage(image: StoredImage): Image {
    const file = this.#render(image);
    return create(ImageSchema, {
      name: image.name,
      contentType: "image/png",
      sizeBytes: BigInt(file.bytes.length),
      sha256: file.sha256,
      widthPx: image.widthPx,
      heightPx: image.heightPx,
      fileName: image.fileName,
    });
  }

  #toStudy(study: StoredStudy): Study {
    return create(StudySchema, {
      name: study.name,
      patientReference: study.patientReference,
      bodyPart: study.bodyPart,
      view: study.view,
      acquireTime: timestampFromMs(study.acquireMs),
      images: study.images.map((i) => this.#toImage(i)),
    });
  }
}
