import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type Account as AccountProto,
  AccountRole as AccountRoleProto,
  AccountSchema,
  type TokenPair,
  TokenPairSchema,
} from "../../gen/telemed/patient/v1/auth_pb.js";
import type { AccountRole } from "./account-entities.ts";
import type { Account } from "./account-store.ts";
import type { IssuedTokens } from "./session-service.ts";

const roleToProto: Record<AccountRole, AccountRoleProto> = {
  patient: AccountRoleProto.PATIENT,
  doctor: AccountRoleProto.DOCTOR,
  paramedic: AccountRoleProto.PARAMEDIC,
  admin: AccountRoleProto.ADMIN,
};

export function tokenPairToProto(account: Account, tokens: IssuedTokens): TokenPair {
  return create(TokenPairSchema, {
    accessToken: tokens.accessToken,
    accessTokenExpireTime: timestampFromDate(tokens.accessExpiresAt),
    refreshToken: tokens.refreshToken,
    refreshTokenExpireTime: timestampFromDate(tokens.refreshExpiresAt),
    tokenType: "Bearer",
    account: `accounts/${account.id}`,
    patient: account.patientId === null ? "" : `patients/${account.patientId}`,
    mfaEnrollmentRequired: !tokens.fullAccess,
  });
}

export function accountToProto(account: Account): AccountProto {
  return create(AccountSchema, {
    name: `accounts/${account.id}`,
    email: account.email,
    emailVerified: account.emailVerifiedAt !== null,
    roles: [roleToProto[account.role]],
    patient: account.patientId === null ? "" : `patients/${account.patientId}`,
    mfaEnrolled: account.mfaEnrolledAt !== null,
    recoveryCodesRemaining: account.recoveryCodeHashes.length,
    createTime: timestampFromDate(account.createdAt),
    passwordChangeTime: timestampFromDate(account.passwordChangedAt),
  });
}

/** The principal name an account acts under in the audit log. */
export function accountActor(account: Account): string {
  return account.role === "patient" ? `patients/${account.patientId}` : `${account.role}s/${account.id}`;
}
