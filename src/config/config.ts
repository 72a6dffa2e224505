import { isIP } from "node:net";
import { join, resolve } from "node:path";
import { type ConsultationConfig, readConsultationConfig } from "../consultations/consultation-config.ts";
import { type EmergencyConfig, readEmergencyConfig } from "../emergencies/emergency-config.ts";
import { type NotificationConfig, readNotificationConfig } from "../notifications/notification-config.ts";
import { type RecordConfig, readRecordConfig } from "../records/record-config.ts";
import { type InsightConfig, readInsightConfig } from "../insights/insight-config.ts";
import { type BillingConfig, readBillingConfig } from "../billing/billing-config.ts";
import { EnvReader } from "./env-readers.ts";

/** pino's level names; `silent` turns logging off. */
export const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof logLevels)[number];

/** Certificate and key (PEM files) for TLS with HTTP/2 over ALPN. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/** Where the sibling services answer; undefined means "use the embedded simulator". */
export interface SiblingUrls {
  readonly doctor: string | undefined;
  readonly paramedic: string | undefined;
  readonly xray: string | undefined;
  readonly notification: string | undefined;
}

/**
 * The service's configuration, parsed once from the environment at start-up and
 * frozen. `.env.example` documents every variable. Several values are credentials
 * (URLs may carry passwords): log `describeConfig(config)`, never the object itself.
 */
export interface Config {
  /**
   * `embedded` when DATABASE_URL is unset: a PostgreSQL in DATA_DIR, in-process
   * stand-ins for NATS and Redis unless their URLs are set, and (by default) the
   * sibling simulators. A development mode; the service says so loudly in its log.
   */
  readonly mode: "embedded" | "external";
  /** PORT; 0 picks a free port (tests). */
  readonly port: number;
  /** HOST: the address to listen on. */
  readonly host: string;
  /** TLS_CERT_FILE and TLS_KEY_FILE; undefined serves cleartext (h2c and HTTP/1.1). */
  readonly tls: TlsFiles | undefined;
  readonly logLevel: LogLevel;
  /** DATABASE_URL; undefined in embedded mode. */
  readonly databaseUrl: string | undefined;
  /** DATA_DIR as an absolute path: where the embedded PostgreSQL keeps its data. */
  readonly dataDir: string;
  /** DB_POOL_MAX: most connections the pool opens. */
  readonly dbPoolMax: number;
  /** DB_CONNECT_TIMEOUT_MS: a connect to PostgreSQL that takes longer fails (UNAVAILABLE) instead of hanging. */
  readonly dbConnectTimeoutMs: number;
  /** NATS_URL; undefined selects the in-process stand-in. */
  readonly natsUrl: string | undefined;
  /** REDIS_URL; undefined selects the in-process stand-in. */
  readonly redisUrl: string | undefined;
  /** REDIS_KEY_PREFIX: prefixes every key and channel, so services (or test runs) can share one Redis. */
  readonly redisKeyPrefix: string;
  /** READ_MAX_BYTES: the largest request message accepted, in bytes. */
  readonly readMaxBytes: number;
  /**
   * CORS_ALLOWED_ORIGINS: browser origins (`https://app.example.com`) allowed to call
   * the service with gRPC-Web, Connect or REST. Empty: no cross-origin calls.
   */
  readonly corsAllowedOrigins: readonly string[];
  /** SHUTDOWN_GRACE_MS: how long in-flight calls may run after SIGTERM. */
  readonly shutdownGraceMs: number;
  /** SIMULATORS: `embedded` starts a simulator for each sibling without a URL; `off` starts none. */
  readonly simulators: "embedded" | "off";
  readonly siblings: SiblingUrls;
  readonly auth: AuthConfig;
  readonly audit: AuditConfig;
  /** FAMILY_AGE_OF_MAJORITY: a minor's family link ends on this birthday. */
  readonly familyAgeOfMajority: number;
  readonly consultations: ConsultationConfig;
  readonly notifications: NotificationConfig;
  readonly emergencies: EmergencyConfig;
  readonly records: RecordConfig;
  readonly insights: InsightConfig;
  readonly billing: BillingConfig;
}

/** Tokens, keys and sibling-service credentials. */
export interface AuthConfig {
  /** AUTH_SIGNING_KEY_FILE: Ed25519 PKCS#8 PEM; default DATA_DIR/keys/auth-signing-key.pem, created when missing. */
  readonly signingKeyFile: string;
  /** AUTH_SIGNING_KEY_FILE was set: the file must exist (a production key is never generated). */
  readonly signingKeyConfigured: boolean;
  /** AUTH_ISSUER: the `iss` of every token. */
  readonly issuer: string;
  /** AUTH_AUDIENCE: the `aud` every token carries and every verifier demands. */
  readonly audience: string;
  /** ACCESS_TOKEN_TTL_SECONDS. */
  readonly accessTokenTtlSeconds: number;
  /** REFRESH_TOKEN_TTL_SECONDS: the longest a session lives without a new log-in. */
  readonly refreshTokenTtlSeconds: number;
  /** SECRET_KEY_FILE: 32 bytes of base64 that encrypt MFA secrets; default DATA_DIR/keys/secret.key. */
  readonly secretKeyFile: string;
  readonly secretKeyConfigured: boolean;
  /** SERVICE_CLIENTS: `client-id=sha256hex,…`, sibling services allowed to get service tokens. */
  readonly serviceClients: ReadonlyMap<string, Buffer>;
  /** PASSWORD_HASH_COST: log2 of scrypt's N (15 by default; tests may lower it). */
  readonly passwordHashCost: number;
}

/** The audit log's checkpoints. */
export interface AuditConfig {
  /** AUDIT_SIGNING_KEY_FILE: Ed25519 PKCS#8 PEM signing checkpoints; default DATA_DIR/keys/audit-signing-key.pem. */
  readonly signingKeyFile: string;
  readonly signingKeyConfigured: boolean;
  /** AUDIT_CHECKPOINT_INTERVAL_MS: how often the chain head is signed when it moved. */
  readonly checkpointIntervalMs: number;
}

/** Thrown by `loadConfig` with every problem found, one per line. */
export class ConfigError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

const mebibyte = 1024 * 1024;
const siblingVariables = {
  doctor: "DOCTOR_SERVICE_URL",
  paramedic: "PARAMEDIC_SERVICE_URL",
  xray: "XRAY_SERVICE_URL",
  notification: "NOTIFICATION_SERVICE_URL",
} as const satisfies Record<keyof SiblingUrls, string>;

/**
 * Reads the configuration from `env`. Throws one ConfigError naming every bad
 * variable, so a misconfigured deployment fails at start with the whole list.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): Config {
  const read = new EnvReader(env);
  const databaseUrl = read.url("DATABASE_URL", ["postgres", "postgresql"]);
  const mode = databaseUrl === undefined ? "embedded" : "external";
  const siblings: SiblingUrls = Object.freeze({
    doctor: read.url(siblingVariables.doctor, ["http", "https"]),
    paramedic: read.url(siblingVariables.paramedic, ["http", "https"]),
    xray: read.url(siblingVariables.xray, ["http", "https"]),
    notification: read.url(siblingVariables.notification, ["http", "https"]),
  });
  const dataDir = resolve(read.raw("DATA_DIR") ?? ".data");
  const simulators = read.oneOf("SIMULATORS", ["embedded", "off"], defaultSimulators(siblings));
  const config: Config = {
    mode,
    port: read.integer("PORT", 8080, 0, 65535),
    // A container must listen on every interface; a developer's laptop running the
    // embedded mode (generated dev keys, simulated siblings) should not.
    host: readHost(read, mode === "embedded" ? "127.0.0.1" : "0.0.0.0"),
    tls: readTls(read),
    logLevel: read.oneOf("LOG_LEVEL", logLevels, "info"),
    databaseUrl,
    dataDir,
    dbPoolMax: read.integer("DB_POOL_MAX", 10, 1, 1000),
    dbConnectTimeoutMs: read.integer("DB_CONNECT_TIMEOUT_MS", 3_000, 100, 60_000),
    natsUrl: read.url("NATS_URL", ["nats", "tls", "ws", "wss"]),
    redisUrl: read.url("REDIS_URL", ["redis", "rediss"]),
    redisKeyPrefix: readKeyPrefix(read),
    // Connect's default is ~4 GiB; a profile is a few KiB.
    readMaxBytes: read.integer("READ_MAX_BYTES", mebibyte, 1024, 64 * mebibyte),
    corsAllowedOrigins: readOrigins(read),
    shutdownGraceMs: read.integer("SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    simulators,
    siblings,
    auth: readAuth(read, dataDir),
    audit: readAudit(read, dataDir),
    familyAgeOfMajority: read.integer("FAMILY_AGE_OF_MAJORITY", 18, 14, 25),
    consultations: readConsultationConfig(read),
    notifications: readNotificationConfig(read),
    emergencies: readEmergencyConfig(read),
    records: readRecordConfig(read, dataDir),
    insights: readInsightConfig(read),
    billing: readBillingConfig(read, dataDir, simulators),
  };
  if (config.simulators === "off") {
    for (const [sibling, variable] of Object.entries(siblingVariables)) {
      if (siblings[sibling as keyof SiblingUrls] === undefined) {
        read.problem(variable, "is required when SIMULATORS=off (there is no simulator to stand in for it)");
      }
    }
  }
  if (read.problems.length > 0) throw new ConfigError(read.problems);
  return Object.freeze(config);
}

/** Simulators run unless every sibling has an address. */
function defaultSimulators(siblings: SiblingUrls): "embedded" | "off" {
  return Object.values(siblings).every((url) => url !== undefined) ? "off" : "embedded";
}

function readHost(read: EnvReader, fallback: string): string {
  const host = read.raw("HOST");
  if (host === undefined) return fallback;
  const hostname = /^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/;
  if (isIP(host) === 0 && !hostname.test(host)) {
    read.problem("HOST", "must be an IP address or a host name, for example 0.0.0.0 or 127.0.0.1");
    return fallback;
  }
  return host;
}

function readTls(read: EnvReader): TlsFiles | undefined {
  const certFile = read.readableFile("TLS_CERT_FILE");
  const keyFile = read.readableFile("TLS_KEY_FILE");
  const certSet = read.raw("TLS_CERT_FILE") !== undefined;
  const keySet = read.raw("TLS_KEY_FILE") !== undefined;
  if (certSet !== keySet) {
    read.problem(
      certSet ? "TLS_KEY_FILE" : "TLS_CERT_FILE",
      "must be set together with the other (TLS needs both the certificate and the key)",
    );
    return undefined;
  }
  return certFile !== undefined && keyFile !== undefined ? Object.freeze({ certFile, keyFile }) : undefined;
}

/** A comma-separated list of exact origins; `*` is refused: health data is not for any site. */
function readOrigins(read: EnvReader): readonly string[] {
  const raw = read.raw("CORS_ALLOWED_ORIGINS");
  if (raw === undefined) return Object.freeze([]);
  const origins = raw
    .split(",")
    .map((origin) => origin.trim())
    .filter(Boolean);
  for (const origin of origins) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !["http:", "https:"].includes(parsed.protocol) || parsed.origin !== origin) {
      read.problem(
        "CORS_ALLOWED_ORIGINS",
        "must list exact origins like https://app.example.com, separated by commas (no paths, no *)",
      );
      return Object.freeze([]);
    }
  }
  return Object.freeze(origins);
}

function readAuth(read: EnvReader, dataDir: string): AuthConfig {
  const signingKeyFile = read.raw("AUTH_SIGNING_KEY_FILE");
  const secretKeyFile = read.raw("SECRET_KEY_FILE");
  return Object.freeze({
    signingKeyFile: signingKeyFile ?? join(dataDir, "keys", "auth-signing-key.pem"),
    signingKeyConfigured: signingKeyFile !== undefined && read.readableFile("AUTH_SIGNING_KEY_FILE") !== undefined,
    issuer: read.raw("AUTH_ISSUER") ?? "urn:telemed:patient-service",
    audience: read.raw("AUTH_AUDIENCE") ?? "urn:telemed:api",
    accessTokenTtlSeconds: read.integer("ACCESS_TOKEN_TTL_SECONDS", 900, 30, 3600),
    refreshTokenTtlSeconds: read.integer("REFRESH_TOKEN_TTL_SECONDS", 30 * 86_400, 300, 90 * 86_400),
    secretKeyFile: secretKeyFile ?? join(dataDir, "keys", "secret.key"),
    secretKeyConfigured: secretKeyFile !== undefined && read.readableFile("SECRET_KEY_FILE") !== undefined,
    serviceClients: readServiceClients(read),
    passwordHashCost: read.integer("PASSWORD_HASH_COST", 15, 10, 20),
  });
}

function readAudit(read: EnvReader, dataDir: string): AuditConfig {
  const signingKeyFile = read.raw("AUDIT_SIGNING_KEY_FILE");
  return Object.freeze({
    signingKeyFile: signingKeyFile ?? join(dataDir, "keys", "audit-signing-key.pem"),
    signingKeyConfigured: signingKeyFile !== undefined && read.readableFile("AUDIT_SIGNING_KEY_FILE") !== undefined,
    checkpointIntervalMs: read.integer("AUDIT_CHECKPOINT_INTERVAL_MS", 60_000, 100, 3_600_000),
  });
}

/** `doctor-service=<sha256 hex of its secret>,…`: the secrets themselves never sit in configuration. */
function readServiceClients(read: EnvReader): ReadonlyMap<string, Buffer> {
  const clients = new Map<string, Buffer>();
  const raw = read.raw("SERVICE_CLIENTS");
  if (raw === undefined) return clients;
  for (const entry of raw
    .split(",")
    .map((part) => part.trim())
    .filter(Boolean)) {
    const match = /^([a-z][a-z0-9-]{0,63})=([0-9a-f]{64})$/.exec(entry);
    if (!match) {
      read.problem("SERVICE_CLIENTS", "must list client-id=sha256-hex-of-secret pairs separated by commas");
      return new Map();
    }
    clients.set(match[1] as string, Buffer.from(match[2] as string, "hex"));
  }
  return clients;
}

function readKeyPrefix(read: EnvReader): string {
  const prefix = read.raw("REDIS_KEY_PREFIX") ?? "patient-service:";
  if (!/^[A-Za-z0-9:._-]{1,64}$/.test(prefix)) {
    read.problem("REDIS_KEY_PREFIX", "must be 1 to 64 letters, digits or : . _ -");
    return "patient-service:";
  }
  return prefix;
}
