import { createHash, timingSafeEqual } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { AuthService } from "../../gen/telemed/patient/v1/auth_service_pb.js";
import { DomainError } from "../shared/domain-errors.ts";
import type { AuthDeps } from "./auth-deps.ts";
import { accountToProto } from "./auth-mapping.ts";
import { attemptKeys, attemptSucceeded, countAttempt, loginHandlers } from "./login-handlers.ts";
import { callerAccount, mfaHandlers } from "./mfa-handlers.ts";
import { passwordHandlers } from "./password-handlers.ts";
import { signUpHandlers } from "./sign-up-handlers.ts";

/** AuthService: sign-up, log-in with MFA, tokens and passwords (RQ-PT001). */
export function authService(deps: AuthDeps): Partial<ServiceImpl<typeof AuthService>> {
  return {
    ...signUpHandlers(deps),
    ...loginHandlers(deps),
    ...mfaHandlers(deps),
    ...passwordHandlers(deps),

    async getCurrentAccount(_request, context) {
      return { account: accountToProto(await callerAccount(deps, context)) };
    },

    /** Client credentials for sibling services (OAuth 2.0 client_credentials, as an RPC). */
    async issueServiceToken(request, context) {
      const keys = attemptKeys(context, `service:${request.clientId}`);
      await countAttempt(deps, keys);
      const client = deps.serviceClients.get(request.clientId);
      const offered = createHash("sha256").update(request.clientSecret).digest();
      if (client === undefined || !timingSafeEqual(offered, client.secretSha256)) {
        throw new DomainError("unauthenticated", "INVALID_CLIENT", "The client id or secret is incorrect.");
      }
      await attemptSucceeded(deps, keys);
      const issued = await deps.issuer.issue(
        { subject: `services/${client.id}`, role: "service", fullAccess: true },
        deps.clock.now(),
      );
      return { accessToken: issued.token, expireTime: timestampFromDate(issued.expiresAt) };
    },
  };
}
