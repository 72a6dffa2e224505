import type { PatientRepository } from "../patients/patient-repository.ts";
import type { Clock } from "../shared/clock.ts";
import type { AccountStore } from "./account-store.ts";
import type { SessionService } from "./session-service.ts";
import type { TokenIssuer } from "./token-issuer.ts";

/** Hashes and checks passwords (scrypt). */
export interface Passwords {
  hash(password: string): Promise<string>;
  verify(password: string, stored: string): Promise<boolean>;
  /** Spends a verification's time for an unknown email, so timing does not reveal accounts. */
  dummyVerify(): Promise<void>;
  /** True when `stored` was made with other parameters than today's (a login then upgrades it). */
  needsRehash(stored: string): boolean;
  /** Refuses a new password that breaks the policy: INVALID_ARGUMENT naming `field`, one violation per problem. */
  requireStrong(
    password: string,
    context: { email: string; givenName: string; familyName: string },
    field: string,
  ): void;
}

/** TOTP secrets and codes. */
export interface Totp {
  newSecret(): string;
  uri(label: string, secret: string): string;
  /** The time step a valid code belongs to, or undefined. */
  check(secret: string, code: string, now: Date): Promise<number | undefined>;
}

/** One-time recovery codes; only their hashes are stored. */
export interface RecoveryCodes {
  generate(): { codes: string[]; hashes: string[] };
  hash(code: string): string;
}

/** Encrypts small secrets at rest (the TOTP secret). */
export interface SecretBox {
  /** `context` (the account id) is authenticated too: a sealed value copied to another row does not open. */
  seal(plain: string, context: string): string;
  open(sealed: string, context: string): string;
}

/** Brute-force limits on failed attempts, per account and per client address. */
export interface AttemptLimits {
  /** Counts this attempt against every key first (atomically); refused once a key is at its limit. */
  attempt(keys: readonly string[]): Promise<{ allowed: boolean; retryAfterSeconds: number }>;
  /** Takes a counted attempt back. */
  forgive(keys: readonly string[]): Promise<void>;
  reset(keys: readonly string[]): Promise<void>;
}

/** Sends an email through the Notification Service contract. */
export interface Mailer {
  send(message: { to: string; subject: string; text: string; idempotencyKey: string }): Promise<void>;
}

/** A sibling service allowed to get service tokens: its id and the SHA-256 of its secret. */
export interface ServiceClient {
  readonly id: string;
  readonly secretSha256: Buffer;
}

/** Everything the AuthService handlers use. */
export interface AuthDeps {
  readonly accounts: AccountStore;
  readonly sessions: SessionService;
  readonly patients: PatientRepository;
  readonly passwords: Passwords;
  readonly totp: Totp;
  readonly recoveryCodes: RecoveryCodes;
  readonly secretBox: SecretBox;
  readonly limits: AttemptLimits;
  readonly mailer: Mailer;
  readonly issuer: TokenIssuer;
  readonly serviceClients: ReadonlyMap<string, ServiceClient>;
  readonly clock: Clock;
}
