import { describe, expect, it } from "vitest";
import {
  compareSpecificity,
  decodeVariable,
  matchPathTemplate,
  parsePathTemplate,
  templateShape,
} from "../../../src/server/rest/path-template.ts";

const match = (template: string, path: string) => matchPathTemplate(parsePathTemplate(template), path);

describe("parsePathTemplate", () => {
  it("parses literal segments", () => {
    const template = parsePathTemplate("/v1/patients");
    expect(template.segments).toEqual([
      { kind: "literal", value: "v1" },
      { kind: "literal", value: "patients" },
    ]);
    expect(template.variables).toEqual([]);
    expect(template.verb).toBeUndefined();
  });

  it("reads {field} as {field=*}", () => {
    const template = parsePathTemplate("/patients/{id}");
    expect(template.segments[1]).toEqual({ kind: "wildcard" });
    expect(template.variables).toEqual([{ fieldPath: ["id"], start: 1, end: 2, multiSegment: false }]);
  });

  it("parses {field=patients/*} as a multi-segment variable", () => {
    const template = parsePathTemplate("/{name=patients/*}");
    expect(template.variables).toEqual([{ fieldPath: ["name"], start: 0, end: 2, multiSegment: true }]);
  });

  it("parses nested field paths", () => {
    const template = parsePathTemplate("/{patient.name=patients/*}");
    expect(template.variables[0]?.fieldPath).toEqual(["patient", "name"]);
  });

  it("parses {field=**} and a bare ** as deep segments", () => {
    expect(parsePathTemplate("/{name=files/**}").segments[1]).toEqual({ kind: "deep" });
    expect(parsePathTemplate("/{path=**}").variables[0]?.multiSegment).toBe(true);
    expect(parsePathTemplate("/v1/**").segments[1]).toEqual({ kind: "deep" });
  });

  it("parses a custom verb", () => {
    const template = parsePathTemplate("/{name=patients/*/consultations/*}:cancel");
    expect(template.verb).toBe("cancel");
    expect(template.variables[0]).toMatchObject({ start: 0, end: 4 });
    expect(parsePathTemplate("/patients:search").verb).toBe("search");
  });

  it("parses several variables and literals after them", () => {
    const template = parsePathTemplate("/{parent=patients/*}/consultations/{consultation_id}/history");
    expect(template.variables.map((v) => v.fieldPath.join("."))).toEqual(["parent", "consultation_id"]);
    expect(template.segments.at(-1)).toEqual({ kind: "literal", value: "history" });
  });

  it.each([
    ["patients", "starts with"],
    ["/patients/", "expected a literal"],
    ["/{name=patients/{id}}", "cannot nest"],
    ["/{name", 'expected "}"'],
    ["/{1name}", "expected a field path"],
    ["/{a..b}", "expected a field path"],
    ["/**/x", '"**" must be the last'],
    ["/{a}/{a}", "bound twice"],
    ["/a:", "expected a literal"],
    ["/a:b/c", "unexpected character"],
  ])("rejects %s", (source, why) => {
    expect(() => parsePathTemplate(source)).toThrow(why);
  });
});

describe("matchPathTemplate", () => {
  it("matches literals exactly", () => {
    expect(match("/patients", "/patients")).toEqual([]);
    expect(match("/patients", "/patient")).toBeUndefined();
    expect(match("/patients", "/patients/1")).toBeUndefined();
  });

  it("binds the literal parts of a variable with the matched text", () => {
    expect(match("/{name=patients/*}", "/patients/123")).toEqual(["patients/123"]);
    expect(match("/{name=patients/*}", "/doctors/123")).toBeUndefined();
  });

  it("binds nested and several variables", () => {
    expect(match("/{parent=patients/*}/consultations/{id}", "/patients/7/consultations/c1")).toEqual([
      "patients/7",
      "c1",
    ]);
  });

  it("never matches empty segments", () => {
    expect(match("/{name=patients/*}", "/patients/")).toBeUndefined();
    expect(match("/{name=patients/*}", "/patients//")).toBeUndefined();
    expect(match("/{parent=patients/*}/history", "/patients//history")).toBeUndefined();
  });

  it("matches ** against the rest of the path", () => {
    expect(match("/{name=files/**}", "/files/a/b/c.png")).toEqual(["files/a/b/c.png"]);
    expect(match("/{name=files/**}", "/files")).toEqual(["files"]);
    expect(match("/{name=files/**}", "/files/a//b")).toBeUndefined();
  });

  it("requires and strips the custom verb", () => {
    const template = "/{name=patients/*/consultations/*}:cancel";
    expect(match(template, "/patients/1/consultations/2:cancel")).toEqual(["patients/1/consultations/2"]);
    expect(match(template, "/patients/1/consultations/2")).toBeUndefined();
    expect(match(template, "/patients/1/consultations/2:reschedule")).toBeUndefined();
  });

  it("lets a template without a verb take a colon inside a segment", () => {
    expect(match("/{name=patients/*}", "/patients/1:cancel")).toEqual(["patients/1:cancel"]);
  });
});

describe("decodeVariable", () => {
  it("fully decodes single-segment values", () => {
    expect(decodeVariable("a%20b%2Fc", false)).toBe("a b/c");
  });

  it("keeps %2F in multi-segment values so an id cannot add a segment", () => {
    expect(decodeVariable("patients/a%2Fb%20c", true)).toBe("patients/a%2Fb c");
    expect(decodeVariable("patients/a%2fb", true)).toBe("patients/a%2fb");
  });

  it("throws on malformed percent-encoding", () => {
    expect(() => decodeVariable("%zz", false)).toThrow(URIError);
  });
});

describe("compareSpecificity and templateShape", () => {
  it("orders verb templates first, then literals before wildcards before **", () => {
    const sorted = ["/{name=**}", "/{name=patients/*}", "/patients/me", "/{name=patients/*}:cancel"]
      .map(parsePathTemplate)
      .sort(compareSpecificity)
      .map((t) => t.source);
    expect(sorted).toEqual(["/{name=patients/*}:cancel", "/patients/me", "/{name=patients/*}", "/{name=**}"]);
  });

  it("gives templates that match the same paths the same shape", () => {
    expect(templateShape(parsePathTemplate("/{name=patients/*}"))).toBe(
      templateShape(parsePathTemplate("/patients/{id}")),
    );
    expect(templateShape(parsePathTemplate("/{name=patients/*}:cancel"))).not.toBe(
      templateShape(parsePathTemplate("/{name=patients/*}")),
    );
  });
});
