import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Channel, Delivery_State, Priority } from "../../gen/telemed/notification/v1/notification_pb.js";
import { NotificationDeliveryService } from "../../gen/telemed/notification/v1/notification_service_pb.js";
import { createGrpcJsClient, grpcUnary } from "../support/grpc-js-client.ts";
import { describeRefusal, refusal, type SimulatorHarness, startHarness } from "./simulator-fixtures.ts";

let h: SimulatorHarness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const email = () => `asha.${randomUUID().slice(0, 8)}@example.com`;
const emailDelivery = (to: string, text: string) => ({
  channel: Channel.EMAIL,
  recipient: { address: { case: "email" as const, value: to } },
  content: { subject: "Verify your email", textBody: text },
  category: "account",
});

describe("notification delivery", () => {
  it("records a delivery and lets a test read the last message to an address (a verification code)", async () => {
    const to = email();
    const { delivery } = await h.clients.notification.deliver({
      delivery: emailDelivery(to, "Your code is 482913"),
      idempotencyKey: `verify:${randomUUID()}`,
    });
    expect(delivery).toMatchObject({ state: Delivery_State.DELIVERED, attemptCount: 1, priority: Priority.NORMAL });
    expect(delivery?.providerMessageId).not.toBe("");
    expect(h.sims.notification.lastMessageTo(to.toUpperCase())?.textBody.match(/\d{6}/)?.[0]).toBe("482913");
    const read = await h.clients.notification.getDelivery({ name: delivery!.name });
    expect(read.delivery?.idempotencyKey).toBe(delivery!.idempotencyKey);
  });

  it("dedupes by idempotency key: a retry (also from a grpc-js client) returns the first delivery and sends nothing", async () => {
    const to = email();
    const idempotencyKey = `reminder:${randomUUID()}:PT15M`;
    const first = await h.clients.notification.deliver({ delivery: emailDelivery(to, "first"), idempotencyKey });
    const second = await h.clients.notification.deliver({ delivery: emailDelivery(to, "second"), idempotencyKey });
    const grpcJs = createGrpcJsClient(NotificationDeliveryService, h.sims.url.replace("http://", ""));
    try {
      const third = await grpcUnary(grpcJs, NotificationDeliveryService.method.deliver, {
        delivery: emailDelivery(to, "third"),
        idempotencyKey,
      });
      expect(third.delivery?.name).toBe(first.delivery?.name);
    } finally {
      grpcJs.close();
    }
    expect(second.delivery?.name).toBe(first.delivery?.name);
    expect(h.sims.notification.messagesTo(to).map((m) => m.textBody)).toEqual(["first"]);
    const listed = await h.clients.notification.listDeliveries({ idempotencyKey });
    expect(listed.deliveries).toHaveLength(1);
  });

  it("holds a scheduled delivery until send_after_time on the injected clock", async () => {
    const to = "+919812345678";
    const { delivery } = await h.clients.notification.deliver({
      delivery: {
        channel: Channel.SMS,
        recipient: { address: { case: "phone", value: to } },
        content: { textBody: "Your consultation starts in 15 minutes" },
        sendAfterTime: timestampFromDate(new Date(h.clock.now().getTime() + 60_000)),
      },
      idempotencyKey: `reminder:${randomUUID()}`,
    });
    expect(delivery?.state).toBe(Delivery_State.QUEUED);
    expect(h.sims.notification.messagesTo(to)).toEqual([]);
    const waiting = h.sims.notification.waitForMessageTo(to, { timeoutMs: 2000 });
    h.clock.advance(60_000);
    expect((await h.clients.notification.getDelivery({ name: delivery!.name })).delivery?.state).toBe(
      Delivery_State.DELIVERED,
    );
    expect((await waiting).textBody).toContain("15 minutes");
  });

  it("lists newest first with filters and paging; a refusing address ends FAILED", async () => {
    const to = email();
    for (const n of [1, 2, 3]) {
      await h.clients.notification.deliver({
        delivery: emailDelivery(to, `n${n}`),
        idempotencyKey: `k:${randomUUID()}`,
      });
    }
    const recipient = { address: { case: "email" as const, value: to } };
    const page = await h.clients.notification.listDeliveries({ recipient, pageSize: 2 });
    expect(page.deliveries.map((d) => d.content?.textBody)).toEqual(["n3", "n2"]);
    const rest = await h.clients.notification.listDeliveries({ recipient, pageSize: 2, pageToken: page.nextPageToken });
    expect(rest.deliveries.map((d) => d.content?.textBody)).toEqual(["n1"]);
    const replayed = await refusal(h.clients.notification.listDeliveries({ pageToken: page.nextPageToken }));
    expect(describeRefusal(replayed).code).toBe("InvalidArgument");

    const refused = email();
    h.sims.notification.failDeliveriesTo(refused, "mailbox does not exist");
    const { delivery } = await h.clients.notification.deliver({
      delivery: emailDelivery(refused, "x"),
      idempotencyKey: `k:${randomUUID()}`,
    });
    expect(delivery).toMatchObject({ state: Delivery_State.FAILED, lastError: "mailbox does not exist" });
  });

  it("refuses a recipient that does not match the channel, per the contract's rule", async () => {
    const error = await refusal(
      h.clients.notification.deliver({
        delivery: { ...emailDelivery(email(), "x"), channel: Channel.SMS },
        idempotencyKey: `k:${randomUUID()}`,
      }),
    );
    expect(describeRefusal(error)).toMatchObject({ code: "InvalidArgument", domain: "notification.telemed.example" });
  });
});
