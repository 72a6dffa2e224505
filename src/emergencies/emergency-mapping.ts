import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import {
  type Emergency,
  EmergencyKind as EmergencyKindProto,
  type EmergencyLocation,
  type EmergencyLocationSchema,
  EmergencySchema,
  EmergencySeverity,
  type EmergencyStatusEventSchema,
  Emergency_State,
} from "../../gen/telemed/patient/v1/emergency_pb.js";
import { DomainError } from "../shared/domain-errors.ts";
import {
  type EmergencyKind,
  emergencyKinds,
  type EmergencyState,
  emergencyStates,
  type Severity,
  severities,
} from "./emergency.ts";
import {
  type EmergencyView,
  emergencyName,
  etagOf,
  type StoredLocation,
  type TimelineEntry,
} from "./emergency-record.ts";

/** Proto enum value → stored short name, by the enum's own value names (`ALLERGIC_REACTION` → `allergic_reaction`). */
function byName<P extends number, N extends string>(proto: Record<string, string | number>, names: readonly N[]) {
  const from = new Map<P, N>();
  const to = new Map<N, P>();
  for (const name of names) {
    const value = proto[name.toUpperCase()] as P | undefined;
    if (value === undefined) throw new Error(`no proto value for ${name}`);
    from.set(value, name);
    to.set(name, value);
  }
  return { from, to };
}

const kinds = byName<EmergencyKindProto, EmergencyKind>(EmergencyKindProto, emergencyKinds);
const severityNames = byName<EmergencySeverity, Severity>(EmergencySeverity, severities);
const states = byName<Emergency_State, EmergencyState>(Emergency_State, emergencyStates);

export const kindFromProto = (value: EmergencyKindProto): EmergencyKind | undefined => kinds.from.get(value);
export const severityFromProto = (value: EmergencySeverity): Severity | undefined => severityNames.from.get(value);
export const stateFromProto = (value: Emergency_State): EmergencyState | undefined => states.from.get(value);
export const stateToProto = (state: EmergencyState): Emergency_State =>
  states.to.get(state) ?? Emergency_State.UNSPECIFIED;

/** Stored actor role (lower-case ActorRole name) ↔ proto. */
export function actorRoleToProto(role: string): ActorRole {
  return (ActorRole as unknown as Record<string, ActorRole>)[role.toUpperCase()] ?? ActorRole.UNSPECIFIED;
}
export function actorRoleName(role: ActorRole): string {
  return (ActorRole[role] ?? "UNSPECIFIED").toLowerCase();
}

/**
 * The reported location, checked beyond the contract's rules: protovalidate already
 * refuses out-of-range and 0,0 coordinates and a location with neither coordinates nor
 * an address; here an address without anything to drive to, and a fix from the future.
 */
export function locationFromProto(location: EmergencyLocation | undefined, now: Date): StoredLocation {
  const violations: { field: string; description: string }[] = [];
  if (location === undefined) {
    violations.push({ field: "emergency.location", description: "is required" });
    throw invalidLocation(violations);
  }
  const address = location.address;
  const addressUsable =
    address !== undefined &&
    (address.lines.some((line) => line.trim() !== "") ||
      address.locality.trim() !== "" ||
      address.postalCode.trim() !== "");
  if (location.latLng === undefined && !addressUsable) {
    violations.push({
      field: "emergency.location.address",
      description: "needs a street line, a locality or a postal code when there are no coordinates",
    });
  }
  const latLng = location.latLng;
  if (latLng !== undefined && (!Number.isFinite(latLng.latitude) || !Number.isFinite(latLng.longitude))) {
    violations.push({ field: "emergency.location.lat_lng", description: "must be finite numbers" });
  }
  const fixTime = location.fixTime === undefined ? undefined : timestampDate(location.fixTime);
  if (fixTime !== undefined && fixTime.getTime() > now.getTime() + 5 * 60_000) {
    violations.push({ field: "emergency.location.fix_time", description: "must not be in the future" });
  }
  if (violations.length > 0) throw invalidLocation(violations);
  return {
    ...(latLng === undefined ? {} : { latitude: latLng.latitude, longitude: latLng.longitude }),
    accuracyMeters: location.accuracyMeters,
    ...(address === undefined || !addressUsable
      ? {}
      : {
          address: {
            lines: [...address.lines],
            locality: address.locality,
            region: address.region,
            postalCode: address.postalCode,
            regionCode: address.regionCode,
          },
        }),
    landmark: location.landmark,
    ...(fixTime === undefined ? {} : { fixTime: fixTime.toISOString() }),
  };
}

function invalidLocation(violations: { field: string; description: string }[]): DomainError {
  return new DomainError("invalid-argument", "INVALID_LOCATION", "The location cannot be used to send help.", {
    violations,
  });
}

type StatusEventInit = MessageInitShape<typeof EmergencyStatusEventSchema>;

/** A timeline entry as the contract shows it; its `sequence` is the timeline position. */
export function timelineEntryToProto(entry: TimelineEntry): StatusEventInit {
  return {
    state: stateToProto(entry.state),
    sequence: BigInt(entry.position),
    eventTime: timestampFromDate(entry.eventTime),
    actor: { principal: entry.actor, role: actorRoleToProto(entry.actorRole) },
    note: entry.note,
  };
}

/** A stored location as the contract shows it (the API, and the dispatch details for the paramedics). */
export function locationToProto(location: StoredLocation): MessageInitShape<typeof EmergencyLocationSchema> {
  return {
    ...(location.latitude === undefined || location.longitude === undefined
      ? {}
      : { latLng: { latitude: location.latitude, longitude: location.longitude } }),
    accuracyMeters: location.accuracyMeters,
    ...(location.address === undefined ? {} : { address: { ...location.address, lines: [...location.address.lines] } }),
    landmark: location.landmark,
    ...(location.fixTime === undefined ? {} : { fixTime: timestampFromDate(new Date(location.fixTime)) }),
  };
}

/** Stored kind and severity → proto. */
export const kindToProto = (kind: EmergencyKind): EmergencyKindProto =>
  kinds.to.get(kind) ?? EmergencyKindProto.UNSPECIFIED;
export const severityToProto = (severity: Severity): EmergencySeverity =>
  severityNames.to.get(severity) ?? EmergencySeverity.UNSPECIFIED;

/** An emergency with its timeline, as the contract shows it. */
export function emergencyToProto(view: EmergencyView): Emergency {
  const { emergency: record, timeline } = view;
  const location = record.location;
  const assignment = record.assignment;
  return create(EmergencySchema, {
    name: emergencyName(record.patientId, record.id),
    kind: kinds.to.get(record.kind),
    severity: severityNames.to.get(record.severity),
    priority: record.priority,
    description: record.description,
    location: locationToProto(location),
    callbackPhone: record.callbackPhone,
    state: stateToProto(record.state),
    timeline: timeline.map(timelineEntryToProto),
    ...(assignment === null
      ? {}
      : {
          assignment: {
            unit: assignment.unit,
            callSign: assignment.callSign,
            ...(assignment.etaTime === undefined ? {} : { etaTime: timestampFromDate(new Date(assignment.etaTime)) }),
            ...(assignment.unitLocation === undefined ? {} : { unitLocation: assignment.unitLocation }),
            destinationHospital: assignment.destinationHospital,
          },
        }),
    requestedBy: { principal: record.requestedBy, role: actorRoleToProto(record.requestedByRole) },
    mergedRequestCount: record.mergedRequestCount,
    ...(record.state === "cancelled"
      ? {
          cancellation: {
            actor: { principal: record.cancelledBy ?? "", role: actorRoleToProto(record.cancelledByRole ?? "") },
            reason: record.cancelReason ?? "",
            cancelTime: timestampFromDate(record.endedAt ?? record.updatedAt),
          },
        }
      : {}),
    createTime: timestampFromDate(record.createdAt),
    updateTime: timestampFromDate(record.updatedAt),
    ...(record.endedAt === null ? {} : { endTime: timestampFromDate(record.endedAt) }),
    etag: etagOf(record),
  });
}
