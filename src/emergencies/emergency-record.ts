import type { EmergencyKind, EmergencyState, Priority, Severity } from "./emergency.ts";

/**
 * An emergency as the store holds it (the proto mapping lives in emergency-mapping.ts).
 * Actor roles are the lower-case names of telemed.patient.v1.ActorRole.
 */
export interface EmergencyRecord {
  readonly id: string;
  readonly patientId: string;
  readonly kind: EmergencyKind;
  readonly severity: Severity;
  readonly priority: Priority;
  readonly description: string;
  readonly location: StoredLocation;
  readonly callbackPhone: string;
  readonly state: EmergencyState;
  readonly lastSourceSequence: number;
  readonly timelineLength: number;
  readonly assignment: StoredAssignment | null;
  readonly requestedBy: string;
  readonly requestedByRole: string;
  readonly mergedRequestCount: number;
  readonly cancelledBy: string | null;
  readonly cancelledByRole: string | null;
  readonly cancelReason: string | null;
  readonly version: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly endedAt: Date | null;
  readonly dispatchedAt: Date | null;
}

/** Where help is needed, as reported. */
export interface StoredLocation {
  readonly latitude?: number;
  readonly longitude?: number;
  readonly accuracyMeters: number;
  readonly address?: {
    readonly lines: readonly string[];
    readonly locality: string;
    readonly region: string;
    readonly postalCode: string;
    readonly regionCode: string;
  };
  readonly landmark: string;
  /** ISO 8601. */
  readonly fixTime?: string;
}

/** The responding unit, from the Paramedic Service's events. */
export interface StoredAssignment {
  readonly unit: string;
  readonly callSign: string;
  /** ISO 8601. */
  readonly etaTime?: string;
  readonly unitLocation?: { readonly latitude: number; readonly longitude: number };
  readonly destinationHospital: string;
}

/** One timeline entry. */
export interface TimelineEntry {
  readonly position: number;
  readonly state: EmergencyState;
  readonly sourceSequence: number | null;
  readonly eventTime: Date;
  readonly actor: string;
  readonly actorRole: string;
  readonly note: string;
}

/** An emergency with its timeline, oldest entry first. */
export interface EmergencyView {
  readonly emergency: EmergencyRecord;
  readonly timeline: readonly TimelineEntry[];
}

/** `patients/{patient}/emergencies/{emergency}`. */
export function emergencyName(patientId: string, emergencyId: string): string {
  return `patients/${patientId}/emergencies/${emergencyId}`;
}

const namePattern = /^patients\/([A-Za-z0-9_-]{1,64})\/emergencies\/([A-Za-z0-9_-]{1,64})$/;

/** Patient and emergency id of a name; undefined when it is not one. */
export function parseEmergencyName(name: string): { patientId: string; emergencyId: string } | undefined {
  const match = namePattern.exec(name);
  return match === null ? undefined : { patientId: match[1] as string, emergencyId: match[2] as string };
}

/** AIP-154 etag of a version. */
export function etagOf(record: Pick<EmergencyRecord, "version">): string {
  return `v${record.version}`;
}
