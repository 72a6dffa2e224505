import pg from "pg";
import { childOptions, exitWhenParentStops, sendToParent } from "./child-ipc.ts";
import { type IssueRequest, runClosedLoop } from "./closed-loop.ts";
import type { PgChildBasics } from "./pg-targets.ts";

/**
 * The body of a raw `pg` driver child (pg-load.ts and its kin): a pool as large as the
 * service's, the request `makeIssue` builds, `concurrency` of them in flight for the
 * warm-up and then the measured run, reported to the parent (`runPgChild`). The pool
 * stays open until the parent says stop, so its readings after the run still see every
 * backend.
 */
export async function runPgDriver<O extends PgChildBasics>(
  makeIssue: (options: O, pool: pg.Pool) => IssueRequest,
): Promise<void> {
  exitWhenParentStops();
  const options = childOptions<O>();
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolMax });
  const issue = makeIssue(options, pool);
  const warmup = await runClosedLoop(options.concurrency, { seconds: options.warmupSeconds }, issue);
  await sendToParent({ type: "measuring" });
  const measured = await runClosedLoop(options.concurrency, options.amount, issue, warmup.nextN);
  await sendToParent({
    type: "result",
    result: {
      measured,
      total: { ok: warmup.all.ok + measured.all.ok, failed: warmup.all.failed + measured.all.failed },
    },
  });
}
