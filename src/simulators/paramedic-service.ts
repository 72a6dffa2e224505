import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { ParamedicService } from "../../gen/telemed/paramedic/v1/paramedic_service_pb.js";
import type { ServiceHandlers } from "./grpc-js-service.ts";
import { pageOf } from "./paging.ts";
import type { ParamedicSimulator } from "./paramedic-simulator.ts";

/** The ParamedicService RPCs (reads only; dispatch travels over NATS) over a ParamedicSimulator. */
export function paramedicHandlers(paramedic: ParamedicSimulator): ServiceHandlers<typeof ParamedicService> {
  return {
    getUnit(request) {
      return { unit: paramedic.unit(request.name) };
    },

    getAssignment(request) {
      return { assignment: paramedic.assignment(request.name) };
    },

    listAssignments(request) {
      const matches = paramedic
        .assignments()
        .filter(
          (a) =>
            (request.states.length === 0 || request.states.includes(a.state)) &&
            (request.priority === 0 || a.priority === request.priority),
        );
      // Newest first: the order and the cursor are the receive time, with the name breaking ties.
      const position = (a: (typeof matches)[number]) =>
        `${String(timestampMs(a.receiveTime!)).padStart(15, "0")}|${a.name}`;
      matches.sort((a, b) => position(b).localeCompare(position(a)));
      const page = pageOf(matches, request, {
        scope: JSON.stringify(["assignments", request.states, request.priority]),
        defaultSize: 100,
        maxSize: 1000,
        cursorOf: position,
        isAfter: (a, cursor) => position(a) < cursor,
      });
      return { assignments: page.items, nextPageToken: page.nextPageToken };
    },
  };
}
