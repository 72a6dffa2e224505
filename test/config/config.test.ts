import { fileURLToPath } from "node:url";
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

describe("no simulated money outside development (PAYMENT_SIMULATOR)", () => {
  const siblings = {
    DOCTOR_SERVICE_URL: "http://doctor:8080",
    PARAMEDIC_SERVICE_URL: "http://paramedic:8080",
    XRAY_SERVICE_URL: "http://xray:8080",
    NOTIFICATION_SERVICE_URL: "http://notification:8080",
  };
  const keyFile = fileURLToPath(import.meta.url); // any readable file stands in for a key file here
  const problemsOf = (env: Record<string, string>): string => {
    try {
      loadConfig(env);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as ConfigError).message;
    }
    return "";
  };

  it("a development stack runs the embedded UPI simulator by default", () => {
    expect(loadConfig({}).billing).toMatchObject({ providerUrl: undefined, simulator: "embedded" });
  });

  it("refuses to start without PAYMENT_PROVIDER_URL when the siblings are real (SIMULATORS=off)", () => {
    for (const env of [siblings, { ...siblings, SIMULATORS: "off" }]) {
      const message = problemsOf(env);
      expect(message).toContain("PAYMENT_PROVIDER_URL");
      expect(message).toContain("no money moved");
      expect(message).toContain("PAYMENT_SIMULATOR=embedded");
    }
    expect(problemsOf({ PAYMENT_SIMULATOR: "off" })).toContain(
      "PAYMENT_PROVIDER_URL is required when PAYMENT_SIMULATOR=off",
    );
  });

  it("starts the simulator with real siblings only on an explicit PAYMENT_SIMULATOR=embedded", () => {
    expect(loadConfig({ ...siblings, PAYMENT_SIMULATOR: "embedded" })).toMatchObject({
      simulators: "off",
      billing: { providerUrl: undefined, simulator: "embedded" },
    });
  });

  it("a real provider needs no opt-in, and refuses the simulator beside it", () => {
    const provider = {
      ...siblings,
      PAYMENT_PROVIDER_URL: "https://psp.example/upi",
      PAYMENT_PROVIDER_API_KEY_FILE: keyFile,
      PAYMENT_WEBHOOK_SECRET_FILE: keyFile,
    };
    expect(loadConfig(provider).billing).toMatchObject({ providerUrl: "https://psp.example/upi", simulator: "off" });
    expect(problemsOf({ ...provider, PAYMENT_SIMULATOR: "embedded" })).toContain("PAYMENT_SIMULATOR");
    expect(problemsOf({ PAYMENT_SIMULATOR: "sometimes" })).toContain("PAYMENT_SIMULATOR");
  });
});
