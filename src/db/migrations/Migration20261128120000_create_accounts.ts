import { Migration } from "@mikro-orm/migrations";

/**
 * Accounts, sessions, refresh tokens and one-time tokens (issue 3, RQ-PT001). Mirrors
 * src/auth/account-entities.ts; test/db/schema-drift.test.ts fails when they disagree.
 */
export class Migration20261128120000_create_accounts extends Migration {
  override name = "Migration20261128120000_create_accounts";

  override up(): void {
    this.addSql(`
      create table "accounts" (
        "id" uuid not null,
        "email" varchar(254) not null,
        "password_hash" text not null,
        "role" text not null,
        "patient_id" uuid null,
        "email_verified_at" timestamptz(3) null,
        "mfa_secret" text null,
        "mfa_pending_secret" text null,
        "mfa_pending_expires_at" timestamptz(3) null,
        "mfa_enrolled_at" timestamptz(3) null,
        "mfa_last_step" int null,
        "recovery_code_hashes" jsonb not null,
        "tokens_valid_after" timestamptz(3) not null,
        "password_changed_at" timestamptz(3) not null,
        "disabled_at" timestamptz(3) null,
        "sign_up_request_id" uuid null,
        "created_at" timestamptz(3) not null,
        "updated_at" timestamptz(3) not null,
        primary key ("id")
      );`);
    this.addSql(`alter table "accounts" add constraint "accounts_email_unique" unique ("email");`);
    this.addSql(`alter table "accounts" add constraint "accounts_patient_id_unique" unique ("patient_id");`);
    this.addSql(
      `alter table "accounts" add constraint "accounts_sign_up_request_id_unique" unique ("sign_up_request_id");`,
    );
    this.addSql(`alter table "accounts" add constraint "accounts_email_check" check (email = lower(email));`);
    this.addSql(
      `alter table "accounts" add constraint "accounts_role_check" check ("role" in ('patient', 'doctor', 'paramedic', 'admin'));`,
    );

    this.addSql(`
      create table "auth_sessions" (
        "id" uuid not null,
        "account_id" uuid not null,
        "full_access" boolean not null,
        "created_at" timestamptz(3) not null,
        "expires_at" timestamptz(3) not null,
        "revoked_at" timestamptz(3) null,
        "revoke_reason" varchar(32) null,
        primary key ("id")
      );`);
    this.addSql(`create index "auth_sessions_account_id_idx" on "auth_sessions" ("account_id");`);

    this.addSql(`
      create table "auth_refresh_tokens" (
        "token_hash" varchar(64) not null,
        "session_id" uuid not null,
        "issued_at" timestamptz(3) not null,
        "expires_at" timestamptz(3) not null,
        "used_at" timestamptz(3) null,
        primary key ("token_hash")
      );`);
    this.addSql(`create index "auth_refresh_tokens_session_id_idx" on "auth_refresh_tokens" ("session_id");`);

    this.addSql(`
      create table "auth_one_time_tokens" (
        "token_hash" varchar(64) not null,
        "account_id" uuid not null,
        "purpose" text not null,
        "created_at" timestamptz(3) not null,
        "expires_at" timestamptz(3) not null,
        "used_at" timestamptz(3) null,
        primary key ("token_hash")
      );`);
    this.addSql(`create index "auth_one_time_tokens_account_id_idx" on "auth_one_time_tokens" ("account_id");`);
    this.addSql(
      `alter table "auth_one_time_tokens" add constraint "auth_one_time_tokens_purpose_check" check ("purpose" in ('verify_email', 'reset_password', 'mfa_challenge'));`,
    );
  }

  override down(): void {
    this.addSql(`drop table if exists "auth_one_time_tokens";`);
    this.addSql(`drop table if exists "auth_refresh_tokens";`);
    this.addSql(`drop table if exists "auth_sessions";`);
    this.addSql(`drop table if exists "accounts";`);
  }
}
