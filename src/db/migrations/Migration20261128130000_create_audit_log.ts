import { Migration } from "@mikro-orm/migrations";

/** The group role of the service's runtime login (see the class comment). */
const appRole = "patient_service_app";

/**
 * The tamper-evident audit log (issue 3, RQ-PT004). Mirrors src/audit/audit-entities.ts
 * (tables, checks, the index and the row-level triggers; test/db/schema-drift.test.ts
 * fails when they disagree). Only here, because MikroORM cannot see them: the TRUNCATE
 * triggers, `enable always`, the initial head row, the role and the grants.
 *
 * - Append-only, enforced twice. Triggers refuse UPDATE and DELETE (per row) and
 *   TRUNCATE (per statement) on `audit_log` and `audit_checkpoints`, whoever asks,
 *   including the table owner; they are `enable always`, so `session_replication_role
 *   = replica` does not switch them off: only an explicit `alter table … disable
 *   trigger` (DDL, by the owner or a superuser) does. `audit_chain_head` may only
 *   move forward.
 * - Grants. `patient_service_app` is a NOLOGIN group role: the service's runtime login
 *   should be a member of it and own nothing, while migrations run as the owner of the
 *   schema (`npm run migrate`). The role may SELECT, INSERT, UPDATE and DELETE ordinary
 *   tables (also those later migrations create, through default privileges), but only
 *   SELECT and INSERT the audit tables, and SELECT and UPDATE the chain head. A later
 *   migration that adds another append-only table must revoke from it likewise.
 *
 * Roles are cluster-wide, while each database migrates on its own (tests migrate many
 * at once): creating the role tolerates another database's migration creating it at
 * the same moment, and a migrating user without CREATEROLE gets a NOTICE instead of a
 * failure (the grants are then skipped; the triggers still hold).
 */
export class Migration20261128130000_create_audit_log extends Migration {
  override name = "Migration20261128130000_create_audit_log";

  override up(): void {
    this.addSql(`
      create table "audit_log" (
        "sequence" bigint not null,
        "event_time" timestamptz(6) not null,
        "actor" text not null,
        "actor_role" text not null,
        "subject_patient_id" uuid null,
        "proxy" boolean not null,
        "action" text not null,
        "resource" text not null,
        "outcome" text not null,
        "rpc" text not null,
        "request_id" text not null,
        "client_address" text not null,
        "reason" text not null,
        "prev_hash" bytea not null,
        "hash" bytea not null,
        primary key ("sequence")
      );`);
    this.addSql(
      `alter table "audit_log" add constraint "audit_log_prev_hash_check" check (octet_length(prev_hash) = 32);`,
    );
    this.addSql(`alter table "audit_log" add constraint "audit_log_hash_check" check (octet_length(hash) = 32);`);
    // A patient's access view: their entries, newest first.
    this.addSql(
      `create index "audit_log_subject_sequence_idx" on "audit_log" ("subject_patient_id", "sequence" DESC);`,
    );

    this.addSql(`
      create table "audit_chain_head" (
        "id" smallint not null,
        "sequence" bigint not null,
        "hash" bytea not null,
        primary key ("id")
      );`);
    this.addSql(`alter table "audit_chain_head" add constraint "audit_chain_head_id_check" check (id = 1);`);
    this.addSql(
      `alter table "audit_chain_head" add constraint "audit_chain_head_hash_check" check (octet_length(hash) = 32);`,
    );
    // The empty chain: sequence 0, and the genesis hash (32 zero bytes) as the next entry's prev_hash.
    this.addSql(`insert into "audit_chain_head" ("id", "sequence", "hash") values (1, 0, '\\x${"00".repeat(32)}');`);

    this.addSql(`
      create table "audit_checkpoints" (
        "sequence" bigint not null,
        "hash" bytea not null,
        "signed_at" timestamptz(6) not null,
        "key_id" text not null,
        "signature" bytea not null,
        primary key ("sequence")
      );`);
    this.addSql(
      `alter table "audit_checkpoints" add constraint "audit_checkpoints_hash_check" check (octet_length(hash) = 32);`,
    );

    // The row-level triggers are declared in audit-entities.ts too (MikroORM introspects
    // them, by its naming convention `{table}_{trigger}_fn`); the TRUNCATE twins reuse
    // the same functions and are not visible to its diff.
    for (const table of ["audit_log", "audit_checkpoints"]) {
      this.addSql(
        `create function "${table}_append_only_fn"() returns trigger as $$ ` +
          `begin raise exception '% is append-only: % refused', tg_table_name, tg_op; end; $$ language plpgsql;`,
      );
      this.addSql(
        `create trigger "append_only" before update or delete on "${table}" ` +
          `for each row execute function "${table}_append_only_fn"();`,
      );
      this.addSql(
        `create trigger "append_only_truncate" before truncate on "${table}" ` +
          `for each statement execute function "${table}_append_only_fn"();`,
      );
      this.addSql(`alter table "${table}" enable always trigger "append_only";`);
      this.addSql(`alter table "${table}" enable always trigger "append_only_truncate";`);
    }
    this.addSql(
      `create function "audit_chain_head_forward_only_fn"() returns trigger as $$ begin ` +
        `if tg_op <> 'UPDATE' then raise exception 'audit_chain_head: % refused', tg_op; end if; ` +
        `if new.sequence < old.sequence then raise exception 'audit_chain_head may only move forward'; end if; ` +
        `return new; end; $$ language plpgsql;`,
    );
    this.addSql(
      `create trigger "forward_only" before update or delete on "audit_chain_head" ` +
        `for each row execute function "audit_chain_head_forward_only_fn"();`,
    );
    this.addSql(
      `create trigger "forward_only_truncate" before truncate on "audit_chain_head" ` +
        `for each statement execute function "audit_chain_head_forward_only_fn"();`,
    );
    this.addSql(`alter table "audit_chain_head" enable always trigger "forward_only";`);
    this.addSql(`alter table "audit_chain_head" enable always trigger "forward_only_truncate";`);

    this.addSql(`revoke update, delete, truncate on "audit_log", "audit_checkpoints" from public;`);
    this.addSql(`revoke delete, truncate on "audit_chain_head" from public;`);

    this.addSql(`
      do $$
      begin
        if not exists (select from pg_catalog.pg_roles where rolname = '${appRole}') then
          begin
            create role "${appRole}" nologin;
          exception
            -- Another database's migration created it first, or is creating it now.
            when duplicate_object or unique_violation then null;
            when insufficient_privilege then
              raise notice 'role ${appRole} not created (no CREATEROLE): create it and re-apply the grants of this migration';
          end;
        end if;
      end
      $$;`);
    this.addSql(`
      do $$
      begin
        if not exists (select from pg_catalog.pg_roles where rolname = '${appRole}') then
          raise notice 'role ${appRole} missing: grants skipped';
          return;
        end if;
        grant usage on schema public to "${appRole}";
        grant select, insert, update, delete on all tables in schema public to "${appRole}";
        grant usage, select on all sequences in schema public to "${appRole}";
        alter default privileges in schema public grant select, insert, update, delete on tables to "${appRole}";
        alter default privileges in schema public grant usage, select on sequences to "${appRole}";
        revoke update, delete, truncate, references, trigger on "audit_log", "audit_checkpoints" from "${appRole}";
        revoke insert, delete, truncate, references, trigger on "audit_chain_head" from "${appRole}";
      end
      $$;`);
  }

  override down(): void {
    this.addSql(`drop table if exists "audit_checkpoints";`);
    this.addSql(`drop table if exists "audit_chain_head";`);
    this.addSql(`drop table if exists "audit_log";`);
    this.addSql(`drop function if exists "audit_chain_head_forward_only_fn"();`);
    this.addSql(`drop function if exists "audit_checkpoints_append_only_fn"();`);
    this.addSql(`drop function if exists "audit_log_append_only_fn"();`);
    // The role is cluster-wide and other databases may use it: only this database's defaults are undone.
    this.addSql(`
      do $$
      begin
        if exists (select from pg_catalog.pg_roles where rolname = '${appRole}') then
          alter default privileges in schema public revoke select, insert, update, delete on tables from "${appRole}";
          alter default privileges in schema public revoke usage, select on sequences from "${appRole}";
        end if;
      end
      $$;`);
  }
}
