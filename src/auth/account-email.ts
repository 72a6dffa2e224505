import { Code } from "@connectrpc/connect";
import type { Logger } from "../observability/logger.ts";
import { statusError } from "../rpc/error-mapping.ts";
import { normaliseEmail } from "../shared/crypto/blind-index.ts";
import { EnvelopeError } from "../shared/crypto/envelope.ts";
import type { FieldCrypto } from "../shared/crypto/field-crypto.ts";

/** An account's email as stored: sealed, indexed, and the account's wrapped data key. */
export interface SealedEmail {
  readonly emailSealed: string;
  readonly emailIndex: string;
  readonly dataKeyWrapped: string;
  readonly dataKeyId: string;
}

const table = "accounts";
const column = "email_sealed";

/**
 * The login email of an account, sealed with the account's own data key (envelope
 * encryption, AAD: accounts, email_sealed, the account id) and found by its blind index.
 *
 * Why sealed here rather than read from the profile: staff accounts (doctor, paramedic,
 * admin) have no profile, and a patient's login email is the address they signed up
 * with, which stays theirs to log in with after they change the contact email of their
 * profile. The plaintext is needed where mail goes out (verification and reset codes,
 * through the Notification Service), for the authenticator's label at MFA enrolment and
 * for the password policy's personal-data check; those read the account and open it.
 */
export class AccountEmails {
  readonly #crypto: FieldCrypto;
  readonly #logger: Logger | undefined;

  constructor(crypto: FieldCrypto, logger?: Logger) {
    this.#crypto = crypto;
    this.#logger = logger;
  }

  /** The blind index of an address: what `accounts.email_index` holds, and what limits count by. */
  index(email: string): string {
    return this.#crypto.blindIndex.email(email);
  }

  /** A new account's email (normalised), sealed under a new data key. */
  seal(accountId: string, email: string): SealedEmail {
    const key = this.#crypto.cipher.newDataKey({ table, row: accountId });
    this.#crypto.dataKeys.remember(key);
    return {
      emailSealed: key.sealText(column, normaliseEmail(email)),
      emailIndex: this.index(email),
      dataKeyWrapped: key.wrapped,
      dataKeyId: key.keyId,
    };
  }

  /** The stored account's email; DATA_LOSS (logged by id only) when it does not open for this row. */
  open(row: { readonly id: string; readonly email_sealed: string; readonly data_key_wrapped: string }): string {
    try {
      return this.#crypto.dataKeys
        .open(row.data_key_wrapped, { table, row: row.id })
        .openText(column, row.email_sealed);
    } catch (error) {
      if (!(error instanceof EnvelopeError)) throw error;
      this.#logger?.error(
        { account: row.id, err: { type: error.name } },
        "a stored account failed its integrity check (copied, tampered or its key is missing)",
      );
      throw statusError(
        Code.DataLoss,
        "ACCOUNT_INTEGRITY_CHECK_FAILED",
        "A stored account failed its integrity check. Quote the request id when reporting it.",
      );
    }
  }
}
