import { randomUUID } from "node:crypto";
import type { DescMethod } from "@bufbuild/protobuf";
import { createContextValues, createHandlerContext, type HandlerContext } from "@connectrpc/connect";
import type { Principal } from "../../src/auth/principal.ts";
import {
  type ActingFor,
  actingForKey,
  clientAddressKey,
  principalKey,
  requestIdKey,
} from "../../src/rpc/context-keys.ts";

/**
 * A HandlerContext for calling a service implementation directly (no server, no
 * pipeline), carrying what the call pipeline would have put on it: the principal, a
 * request id, the client address and, optionally, the proxy decision.
 */
export function handlerContext(
  method: DescMethod,
  values: {
    principal?: Principal | undefined;
    requestId?: string;
    clientAddress?: string;
    actingFor?: ActingFor;
  } = {},
): HandlerContext {
  const contextValues = createContextValues()
    .set(principalKey, values.principal)
    .set(requestIdKey, values.requestId ?? randomUUID())
    .set(clientAddressKey, values.clientAddress ?? "127.0.0.1")
    .set(actingForKey, values.actingFor);
  return createHandlerContext({
    service: method.parent,
    method,
    protocolName: "connect",
    requestMethod: "POST",
    url: `http://127.0.0.1/${method.parent.typeName}/${method.name}`,
    contextValues,
  });
}

/** A patient with full access, as the token verifier would produce it. */
export function patientPrincipal(patientId: string): Principal {
  return {
    role: "patient",
    name: `patients/${patientId}`,
    accountId: randomUUID(),
    patientId,
    sessionId: randomUUID(),
    fullAccess: true,
  };
}

/** An administrator. */
export function adminPrincipal(): Principal {
  const id = randomUUID();
  return {
    role: "admin",
    name: `admins/${id}`,
    accountId: id,
    patientId: undefined,
    sessionId: randomUUID(),
    fullAccess: true,
  };
}

/** A doctor. */
export function doctorPrincipal(): Principal {
  const id = randomUUID();
  return {
    role: "doctor",
    name: `doctors/${id}`,
    accountId: id,
    patientId: undefined,
    sessionId: randomUUID(),
    fullAccess: true,
  };
}
