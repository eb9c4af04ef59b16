// Lists the meetings of a country pair over gRPC-Web, then sends a record
// the service rejects and shows its violations (google.rpc.BadRequest).
// The query string says where and what: ?server=http://127.0.0.1:50051&a=AZ&b=JP
// (and &token=... for a server with a tokens file).
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

import { MeetingService, rpc } from "../typescript/src/index.js";

const params = new URLSearchParams(location.search);
const server = params.get("server") ?? location.origin;
const a = params.get("a") ?? "AZ";
const b = params.get("b") ?? "JP";
const token = params.get("token");

const transport = createGrpcWebTransport({
  baseUrl: server,
  interceptors: token
    ? [
        (next) => async (req) => {
          req.header.set("authorization", `Bearer ${token}`);
          return next(req);
        },
      ]
    : [],
});
const client = createClient(MeetingService, transport);

const byId = (id: string) => document.getElementById(id)!;

function item(list: string, text: string, className?: string, id?: string) {
  const li = document.createElement("li");
  li.textContent = text;
  if (className) li.className = className;
  if (id) li.dataset.id = id;
  byId(list).appendChild(li);
}

async function main() {
  byId("pair").textContent = `${a} and ${b}`;
  let count = 0;
  for await (const response of client.streamMeetingsByCountryPair({ countryA: a, countryB: b })) {
    const m = response.meeting!;
    item("meetings", `${m.date} ${m.location?.city ?? ""}: ${m.topics.join(", ")}`, "meeting", m.id);
    count++;
  }
  byId("status").textContent = `${count} meetings`;

  try {
    await client.createMeeting({
      meeting: {
        date: "2022-13-40",
        participants: [{ name: "Nobody", countryCode: "ZZ" }],
      },
    });
    item("violations", "accepted: no violations");
  } catch (err) {
    const error = ConnectError.from(err);
    item("violations", `rejected: ${Code[error.code]}`, "code");
    for (const bad of error.findDetails(rpc.BadRequestSchema)) {
      for (const v of bad.fieldViolations) {
        item("violations", `${v.field}: ${v.description}`, "violation");
      }
    }
  }
  document.body.dataset.done = "true";
}

main().catch((err) => {
  byId("status").textContent = `error: ${ConnectError.from(err).message}`;
  document.body.dataset.done = "true";
});
