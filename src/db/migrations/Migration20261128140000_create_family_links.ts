import { Migration } from "@mikro-orm/migrations";

/**
 * Family links (issue 3, secondary requirement 4). Mirrors
 * src/family/family-link-entity.ts; test/db/schema-drift.test.ts fails when the two disagree.
 */
export class Migration20261128140000_create_family_links extends Migration {
  override name = "Migration20261128140000_create_family_links";

  override up(): void {
    this.addSql(`
      create table "family_links" (
        "id" uuid not null,
        "guardian_id" uuid not null,
        "dependent_id" uuid null,
        "invitee_email_hash" varchar(64) null,
        "relationship" text not null,
        "grants" text[] not null,
        "state" text not null,
        "consent_method" text null,
        "consent_actor" varchar(255) null,
        "consent_actor_role" text null,
        "consent_time" timestamptz(3) null,
        "revoked_by" varchar(255) null,
        "revoked_by_role" text null,
        "revoke_reason" varchar(500) null,
        "revoked_at" timestamptz(3) null,
        "end_time" timestamptz(3) null,
        "create_request_id" uuid null,
        "version" int not null default 1,
        "created_at" timestamptz(3) not null,
        "updated_at" timestamptz(3) not null,
        primary key ("id")
      );`);
    // AIP-155: a retried create hits this and is answered with the link it made.
    this.addSql(
      `alter table "family_links" add constraint "family_links_create_request_id_unique" unique ("create_request_id");`,
    );
    // ListFamilyLinks, as guardian and as dependent: newest first.
    this.addSql(`create index "family_links_guardian_list_idx" on "family_links" ("guardian_id" DESC, "id" DESC);`);
    this.addSql(`create index "family_links_dependent_list_idx" on "family_links" ("dependent_id" DESC, "id" DESC);`);
    // Invitations by email that no patient has answered yet.
    this.addSql(
      `create index "family_links_invitee_email_hash_idx" on "family_links" ("invitee_email_hash") where dependent_id is null;`,
    );
    // At most one link per pair waits for consent or is in force; it also serves FamilyAccess.grantsFor.
    this.addSql(
      `create unique index "family_links_pair_live_unique" on "family_links" ("guardian_id", "dependent_id") where state in ('pending_consent', 'active');`,
    );
    this.addSql(
      `alter table "family_links" add constraint "family_links_guardian_id_foreign" foreign key ("guardian_id") references "patients" ("id") on update no action on delete no action;`,
    );
    this.addSql(
      `alter table "family_links" add constraint "family_links_dependent_id_foreign" foreign key ("dependent_id") references "patients" ("id") on update no action on delete no action;`,
    );
    this.addSql(
      `alter table "family_links" add constraint "family_links_not_self_check" check (guardian_id <> dependent_id);`,
    );
    this.addSql(
      `alter table "family_links" add constraint "family_links_grants_not_empty_check" check (cardinality(grants) > 0);`,
    );
    this.addSql(
      `alter table "family_links" add constraint "family_links_active_consent_check" check (state <> 'active' or consent_time is not null);`,
    );
    this.addSql(
      `alter table "family_links" add constraint "family_links_relationship_check" check ("relationship" in ('child', 'spouse_or_partner', 'parent', 'sibling', 'other_relative', 'ward'));`,
    );
    this.addSql(
      `alter table "family_links" add constraint "family_links_grants_check" check ("grants" <@ array['view_records'::text, 'book_consultations'::text, 'pay_bills'::text, 'request_emergencies'::text, 'manage_profile'::text]);`,
    );
    this.addSql(
      `alter table "family_links" add constraint "family_links_state_check" check ("state" in ('pending_consent', 'active', 'declined', 'revoked', 'expired'));`,
    );
    this.addSql(
      `alter table "family_links" add constraint "family_links_consent_method_check" check ("consent_method" in ('dependent_accepted', 'guardian_for_minor', 'admin_recorded'));`,
    );
    this.addSql(
      `alter table "family_links" add constraint "family_links_consent_actor_role_check" check ("consent_actor_role" in ('patient', 'guardian', 'doctor', 'paramedic', 'admin', 'service', 'system'));`,
    );
    this.addSql(
      `alter table "family_links" add constraint "family_links_revoked_by_role_check" check ("revoked_by_role" in ('patient', 'guardian', 'doctor', 'paramedic', 'admin', 'service', 'system'));`,
    );
  }

  override down(): void {
    this.addSql(`drop table if exists "family_links";`);
  }
}
