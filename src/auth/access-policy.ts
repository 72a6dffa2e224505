import {
  type DescField,
  type DescMessage,
  type DescMethod,
  type DescService,
  getOption,
  hasOption,
  type Message,
  ScalarType,
} from "@bufbuild/protobuf";
import { type AccessPolicy, access } from "../../gen/telemed/patient/v1/access_policy_pb.js";
import { AuditAction } from "../../gen/telemed/patient/v1/audit_pb.js";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import { FamilyGrant } from "../../gen/telemed/patient/v1/family_pb.js";
import { methodPath } from "../rpc/rpc-table.ts";
import type { PrincipalRole } from "./principal.ts";

/**
 * A method's `(telemed.patient.v1.access)` option, checked and turned into what the
 * call pipeline needs on every call (see `access_policy.proto` for the meaning of
 * each part).
 */
export interface ResolvedPolicy {
  /** Callable without a token; nothing else applies. */
  readonly anonymous: boolean;
  /** Principals that may call; empty for an anonymous method. */
  readonly roles: ReadonlySet<PrincipalRole>;
  /** Also open to the limited token a patient holds before enrolling in MFA. */
  readonly beforeMfa: boolean;
  /** `patient_field` split on ".", as proto field names (`["patient", "name"]`); empty when none. */
  readonly patientField: readonly string[];
  /**
   * The patient id the request names through `patient_field`: `{id}` of a value
   * `patients/{id}` or `patients/{id}/...`. Undefined when the method has no patient
   * field, the field is empty, or its value names no single patient (`patients/-`,
   * anything malformed).
   */
  readPatientId(request: Message): string | undefined;
  /** The family grant that lets a guardian call for a dependent; undefined: no proxy. */
  readonly proxyGrant: FamilyGrant | undefined;
  /** What the audit log records for a call; undefined: not audited (denials always are). */
  readonly audit: AuditAction | undefined;
  /**
   * Admitted while PostgreSQL is down (functional safety 1): the session check falls back
   * to what is cached, else to the token's signature and expiry alone. Only methods in
   * `outageTolerantMethods`.
   */
  readonly outageTolerant?: boolean;
}

/**
 * Methods that must work without PostgreSQL: raising an emergency (its local journal,
 * src/emergencies/journal/). A revoked session whose revocation this instance has not
 * seen may still raise one during an outage; an ambulance too many is the safe side.
 */
export const outageTolerantMethods: ReadonlySet<string> = new Set([
  "/telemed.patient.v1.EmergencyService/CreateEmergency",
]);

/** Services the server adds to every port, open to anyone: they carry no patient data. */
const builtInAnonymousServices: ReadonlySet<string> = new Set([
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
]);

const anonymousPolicy: ResolvedPolicy = Object.freeze({
  anonymous: true,
  roles: new Set<PrincipalRole>(),
  beforeMfa: false,
  patientField: [],
  readPatientId: () => undefined,
  proxyGrant: undefined,
  audit: undefined,
});

const principalRoles: ReadonlyMap<ActorRole, PrincipalRole> = new Map([
  [ActorRole.PATIENT, "patient"],
  [ActorRole.DOCTOR, "doctor"],
  [ActorRole.PARAMEDIC, "paramedic"],
  [ActorRole.ADMIN, "admin"],
  [ActorRole.SERVICE, "service"],
]);

/**
 * The access policy of `method`: its `(telemed.patient.v1.access)` option, or the
 * built-in anonymous policy of the health and reflection services; undefined when
 * it has none. Throws when the option is there but cannot be enforced as written
 * (a role that is no principal, a patient field that is not a string, ...).
 */
export function policyOf(method: DescMethod): ResolvedPolicy | undefined {
  if (hasOption(method, access)) {
    const { policy, problems } = resolve(method, getOption(method, access));
    if (problems.length > 0) throw new Error(`${methodPath(method)}: ${problems.join("; ")}`);
    return policy;
  }
  return builtInAnonymousServices.has(method.parent.typeName) ? anonymousPolicy : undefined;
}

/**
 * The policy of every method of `services`, keyed by `/package.Service/Method`.
 * Throws one error listing every method without a policy, or with one that cannot
 * be enforced, so a server is never built with a method nobody decided about.
 */
export function requirePolicies(services: readonly DescService[]): Map<string, ResolvedPolicy> {
  const policies = new Map<string, ResolvedPolicy>();
  const problems: string[] = [];
  for (const service of services) {
    for (const method of service.methods) {
      try {
        const policy = policyOf(method);
        if (policy === undefined) problems.push(`${methodPath(method)}: no (telemed.patient.v1.access) option`);
        else policies.set(methodPath(method), policy);
      } catch (error) {
        problems.push((error as Error).message);
      }
    }
  }
  if (problems.length > 0) {
    throw new Error(`Access policy missing or invalid on ${problems.length} method(s):\n  ${problems.join("\n  ")}`);
  }
  return policies;
}

const patientPrefix = "patients/";
const patientIdPattern = /^[A-Za-z0-9_-]{1,64}$/;

/** `{id}` of `patients/{id}` or `patients/{id}/...`; undefined for anything else, and for `patients/-`. */
export function patientIdOf(value: string): string | undefined {
  if (!value.startsWith(patientPrefix)) return undefined;
  const end = value.indexOf("/", patientPrefix.length);
  const id = end === -1 ? value.slice(patientPrefix.length) : value.slice(patientPrefix.length, end);
  return id !== "-" && patientIdPattern.test(id) ? id : undefined;
}

function resolve(method: DescMethod, option: AccessPolicy): { policy: ResolvedPolicy; problems: string[] } {
  const problems: string[] = [];
  const roles = new Set<PrincipalRole>();
  for (const role of option.roles) {
    const principalRole = principalRoles.get(role);
    if (principalRole === undefined) {
      problems.push(
        `role ACTOR_ROLE_${ActorRole[role] ?? role} is not a principal (a guardian is a patient with proxy_grant)`,
      );
    } else {
      roles.add(principalRole);
    }
  }
  const path = option.patientField === "" ? [] : option.patientField.split(".");
  const localNames = path.length === 0 ? [] : localNamesOf(method.input, path, problems);
  const proxyGrant = option.proxyGrant === FamilyGrant.UNSPECIFIED ? undefined : option.proxyGrant;
  const audit = option.audit === AuditAction.UNSPECIFIED ? undefined : option.audit;
  if (proxyGrant !== undefined && FamilyGrant[proxyGrant] === undefined) problems.push(`unknown grant ${proxyGrant}`);
  if (audit !== undefined && AuditAction[audit] === undefined) problems.push(`unknown audit action ${audit}`);
  if (option.anonymous) {
    if (roles.size > 0 || option.beforeMfa || path.length > 0 || proxyGrant !== undefined) {
      problems.push("an anonymous method takes no roles, before_mfa, patient_field or proxy_grant");
    }
  } else if (roles.size === 0 && problems.length === 0) {
    problems.push("no role may call it: set roles, or anonymous");
  }
  if (proxyGrant !== undefined && (path.length === 0 || !roles.has("patient"))) {
    problems.push("proxy_grant needs a patient_field and the role ACTOR_ROLE_PATIENT (a guardian is a patient)");
  }
  const policy: ResolvedPolicy = Object.freeze({
    anonymous: option.anonymous,
    roles,
    beforeMfa: option.beforeMfa,
    patientField: Object.freeze(path),
    readPatientId: readerOf(localNames),
    proxyGrant,
    audit,
    outageTolerant: outageTolerantMethods.has(methodPath(method)),
  });
  return { policy, problems };
}

/**
 * The localNames (property names of protobuf-es messages) along `path`: singular
 * message fields down to a singular string field, none of them in a oneof.
 */
function localNamesOf(input: DescMessage, path: readonly string[], problems: string[]): string[] {
  const localNames: string[] = [];
  let message: DescMessage | undefined = input;
  for (const [index, name] of path.entries()) {
    const field: DescField | undefined = message?.fields.find((candidate) => candidate.name === name);
    const last = index === path.length - 1;
    const fits =
      field !== undefined &&
      field.oneof === undefined &&
      (last ? field.fieldKind === "scalar" && field.scalar === ScalarType.STRING : field.fieldKind === "message");
    if (!fits) {
      const want = last ? "a singular string field" : "a singular message field";
      problems.push(`patient_field "${path.join(".")}": ${name} is not ${want} of ${message?.typeName ?? "?"}`);
      return [];
    }
    localNames.push(field.localName);
    message = field.fieldKind === "message" ? field.message : undefined;
  }
  return localNames;
}

type Fields = Record<string, unknown> | undefined;

/** A reader that goes straight to the properties (no reflection on the hot path). */
function readerOf(localNames: readonly string[]): (request: Message) => string | undefined {
  const [first, second] = localNames;
  if (first === undefined) return () => undefined;
  if (second === undefined) return (request) => idIn((request as unknown as Fields)?.[first]);
  if (localNames.length === 2) return (request) => idIn(((request as unknown as Fields)?.[first] as Fields)?.[second]);
  return (request) => {
    let value: unknown = request;
    for (const name of localNames) value = (value as Fields)?.[name];
    return idIn(value);
  };
}

function idIn(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? patientIdOf(value) : undefined;
}
