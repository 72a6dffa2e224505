import { randomBytes, randomUUID } from "node:crypto";
import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AuditAction, AuditOutcome } from "../../../gen/telemed/patient/v1/audit_pb.js";
import { ActorRole } from "../../../gen/telemed/patient/v1/common_pb.js";
import { secretBoxFor } from "../../../src/auth/auth-parts.ts";
import { EmergencyJournal } from "../../../src/emergencies/journal/emergency-journal.ts";
import type { JournalledEmergency } from "../../../src/emergencies/journal/journal-record.ts";
import { createLogger } from "../../../src/observability/logger.ts";
import { uuidV7 } from "../../../src/shared/uuid-v7.ts";

const folders: string[] = [];
afterAll(async () => {
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

const codec = secretBoxFor(randomBytes(32));
const logger = createLogger("silent");

async function folder(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "emergency-journal-"));
  folders.push(dir);
  return join(dir, "emergency-journal");
}

function emergency(description = "Chest pain for 20 minutes"): JournalledEmergency {
  const patientId = randomUUID();
  const id = uuidV7();
  return {
    id,
    patientId,
    requestId: randomUUID(),
    kind: "cardiac",
    severity: "critical",
    priority: 1,
    description,
    location: { latitude: 12.97, longitude: 77.59, accuracyMeters: 15, landmark: "blue gate" },
    callbackPhone: "+919812345678",
    requestedBy: `patients/${patientId}`,
    requestedByRole: "patient",
    createdAt: new Date().toISOString(),
    payload: Buffer.from("dispatch").toString("base64"),
    audit: {
      actor: `patients/${patientId}`,
      actorRole: ActorRole.PATIENT,
      subjectPatientId: patientId,
      proxy: false,
      action: AuditAction.CREATE,
      resource: `patients/${patientId}/emergencies/${id}`,
      outcome: AuditOutcome.SUCCESS,
      rpc: "/telemed.patient.v1.EmergencyService/CreateEmergency",
      requestId: randomUUID(),
      clientAddress: "127.0.0.1",
      reason: "",
    },
  };
}

describe("the emergency journal", () => {
  it("keeps what was acknowledged across a reopen, sealed on disk, and skips a torn last line", async () => {
    const dir = await folder();
    const first = emergency("secret symptom text");
    const second = emergency();
    const journal = await EmergencyJournal.open(dir, codec, logger);
    await Promise.all([
      journal.append({ t: "accepted", emergency: first }),
      journal.append({ t: "accepted", emergency: second }),
    ]);
    await journal.append({ t: "published", id: first.id, at: new Date().toISOString() });
    expect(journal.byRequest(first.patientId, first.requestId)?.emergency.id).toBe(first.id);
    await journal.close(); // writes nothing: the file is as a crash would leave it, plus a torn line below
    // A crash mid-write: a half-written line is left at the end.
    const [file] = (await readdir(dir)).filter((name) => name.endsWith(".log"));
    const text = await readFile(join(dir, file as string), "utf8");
    expect(text).not.toContain("secret symptom text");
    expect(text.split("\n").filter(Boolean)).toHaveLength(3);
    await appendFile(join(dir, file as string), text.slice(0, 40));
    await writeFile(join(dir, "LOCK"), "999999999\n"); // a dead process's lock does not block

    const reopened = await EmergencyJournal.open(dir, codec, logger);
    expect(
      reopened
        .pending()
        .map((p) => p.emergency.id)
        .sort(),
    ).toEqual([first.id, second.id].sort());
    expect(reopened.get(first.id)?.publishedAt).toBeInstanceOf(Date);
    expect(reopened.get(second.id)?.publishedAt).toBeUndefined();
    expect(reopened.get(first.id)?.emergency.description).toBe("secret symptom text");

    // Once everything is replayed, the old files go and one empty file remains.
    await reopened.append({ t: "replayed", id: first.id });
    await reopened.append({ t: "replayed", id: second.id });
    expect(reopened.size).toBe(0);
    await reopened.close(); // waits for the rotation that follows the last write
    const left = (await readdir(dir)).filter((name) => name.endsWith(".log"));
    expect(left, left.join(",")).toHaveLength(1);
    expect(await readFile(join(dir, left[0] as string), "utf8")).toBe("");
    expect((await EmergencyJournal.open(dir, codec, logger)).size).toBe(0);
  });

  it("refuses a folder another live process journals into", async () => {
    const dir = await folder();
    const journal = await EmergencyJournal.open(dir, codec, logger);
    await journal.close();
    await writeFile(join(dir, "LOCK"), `${process.ppid}\n`);
    await expect(EmergencyJournal.open(dir, codec, logger)).rejects.toThrow(/in use by process/);
  });
});
