import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/config.ts";

describe("configuration from the environment", () => {
  it("runs on embedded defaults with nothing set", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      mode: "embedded",
      port: 8080,
      host: "127.0.0.1",
      databaseUrl: undefined,
      natsUrl: undefined,
      redisUrl: undefined,
      simulators: "embedded",
      readMaxBytes: 1024 * 1024,
      corsAllowedOrigins: [],
    });
  });

  it("switches each part to a real server when its URL is set", () => {
    const config = loadConfig({
      DATABASE_URL: "postgres://u:p@db:5432/patient",
      NATS_URL: "nats://nats:4222",
      REDIS_URL: "redis://redis:6379",
    });
    expect(config.mode).toBe("external");
    expect(config.host).toBe("0.0.0.0");
    expect(config.natsUrl).toBe("nats://nats:4222");
  });

  it("names every bad variable at once, without echoing values", () => {
    const error = (() => {
      try {
        loadConfig({
          PORT: "eighty",
          DATABASE_URL: "mysql://secret-password@db/x",
          LOG_LEVEL: "loud",
          TLS_CERT_FILE: "/nonexistent/cert.pem",
          CORS_ALLOWED_ORIGINS: "*",
          READ_MAX_BYTES: "1",
        });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    for (const name of [
      "PORT",
      "DATABASE_URL",
      "LOG_LEVEL",
      "TLS_CERT_FILE",
      "TLS_KEY_FILE",
      "CORS_ALLOWED_ORIGINS",
      "READ_MAX_BYTES",
    ]) {
      expect(message).toContain(name);
    }
    expect(message).not.toContain("secret-password");
  });
});
