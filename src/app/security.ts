import type { Config } from "../config/config.ts";
import type { Orm } from "../db/orm.ts";
import type { Logger } from "../observability/logger.ts";
import type { PatientRepository } from "../patients/patient-repository.ts";
import type { Clock } from "../shared/clock.ts";
import type { SiblingClients } from "../siblings/sibling-clients.ts";
import type { KeyObject } from "node:crypto";
import { AuditCheckpointer, auditKeyId } from "../audit/audit-checkpointer.ts";
import { AuditLog } from "../audit/audit-log.ts";
import { AccessControl } from "../auth/access-control.ts";
import { AccountStore } from "../auth/account-store.ts";
import type { AuthDeps } from "../auth/auth-deps.ts";
import { loadEd25519Key, loadSecretKey } from "../auth/key-files.ts";
import { notificationMailer } from "../auth/notification-mailer.ts";
import { openSharedState, passwordsWith, recoveryCodes, secretBoxFor, totp } from "../auth/auth-parts.ts";
import { SessionService } from "../auth/session-service.ts";
import { SessionStates } from "../auth/session-states.ts";
import { createStaffAccount } from "../auth/staff-accounts.ts";
import { TokenIssuer } from "../auth/token-issuer.ts";
import { TokenVerifier } from "../auth/token-verifier.ts";
import { FamilyAccess } from "../family/family-access.ts";
import { AccountEmails } from "../auth/account-email.ts";
import type { FieldCrypto } from "../shared/crypto/field-crypto.ts";

/** Authentication, access control and the audit log, as the server and handlers use them. */
export interface Security {
  readonly access: AccessControl;
  readonly audit: AuditLog;
  readonly auth: AuthDeps;
  /** Public keys of the audit checkpoint signers, by key id. */
  readonly auditVerifyKeys: ReadonlyMap<string, KeyObject>;
  /** The JWKS document sibling services verify tokens with. */
  readonly jwks: object;
  /** Operator actions (scripts and tests): creating staff accounts. */
  readonly operator: Operator;
  close(): Promise<void>;
}

export interface Operator {
  /** Creates a staff account; its id. `doctorId` links a doctor's account to its Doctor Service doctor. */
  createStaffAccount(fields: {
    email: string;
    role: "doctor" | "paramedic" | "admin";
    password: string;
    doctorId?: string;
  }): Promise<string>;
}

/**
 * Builds the security parts. Keys come from configuration; without it (the embedded
 * default and tests) they are generated once under DATA_DIR/keys and kept. Redis
 * carries brute-force counters and revocation notices when REDIS_URL is set; the
 * embedded default uses in-process stand-ins (one instance, nothing to share).
 */
export async function startSecurity(
  config: Config,
  orm: Orm,
  logger: Logger,
  clock: Clock,
  siblings: SiblingClients,
  patients: PatientRepository,
  crypto: FieldCrypto,
): Promise<Security> {
  const em = () => orm.em.fork();
  const signing = await loadEd25519Key(config.auth.signingKeyFile, { create: !config.auth.signingKeyConfigured });
  const issuer = await TokenIssuer.create(signing.privateKey, signing.publicKey, config.auth);
  const states = new SessionStates(em);
  const shared = await openSharedState(config.redisUrl, config.redisKeyPrefix);
  const bus = shared.revocations;
  bus.subscribe((notice) => {
    if (notice.kind === "session") states.forgetSession(notice.sessionId);
    else states.forgetAccount(notice.accountId);
  });
  const verifier = new TokenVerifier(new Map([[issuer.kid, signing.publicKey]]), config.auth, states);
  const family = new FamilyAccess(em, clock);
  const access = new AccessControl(verifier, family);

  const auditKey = await loadEd25519Key(config.audit.signingKeyFile, { create: !config.audit.signingKeyConfigured });
  const audit = new AuditLog(orm, clock);
  const auditLogger = logger.child({ component: "audit" });
  const checkpointer = new AuditCheckpointer(orm, {
    signingKey: auditKey.privateKey,
    intervalMs: config.audit.checkpointIntervalMs,
    clock,
    onError: (error) => auditLogger.error({ err: error }, "audit checkpoint failed; retrying on the next tick"),
  });

  const limits = shared.limits;
  // Login emails are sealed like profiles' contact fields and found by their blind index.
  const accounts = new AccountStore(em, new AccountEmails(crypto, logger.child({ component: "auth" })));
  const secretBox = secretBoxFor(
    await loadSecretKey(config.auth.secretKeyFile, { create: !config.auth.secretKeyConfigured }),
  );
  const passwords = passwordsWith(config.auth.passwordHashCost);
  const sessions = new SessionService({
    em,
    issuer,
    bus,
    clock,
    refreshTokenTtlSeconds: config.auth.refreshTokenTtlSeconds,
  });
  const auth: AuthDeps = {
    accounts,
    sessions,
    patients,
    passwords,
    totp,
    recoveryCodes,
    secretBox,
    limits,
    mailer: notificationMailer(siblings.notification, logger.child({ component: "mailer" })),
    issuer,
    serviceClients: new Map(
      [...config.auth.serviceClients].map(([id, secretSha256]) => [id, { id, secretSha256 }] as const),
    ),
    clock,
  };
  return {
    access,
    audit,
    auth,
    jwks: issuer.jwks,
    auditVerifyKeys: new Map([[auditKeyId(auditKey.publicKey), auditKey.publicKey]]),
    operator: {
      async createStaffAccount(fields) {
        return (await createStaffAccount(accounts, passwords, fields, clock.now())).id;
      },
    },
    async close() {
      // The log first, so the last checkpoint covers every entry written.
      await audit.close();
      await checkpointer.close();
      await shared.close();
    },
  };
}
