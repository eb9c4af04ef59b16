// Stores the example article, streams its country pair, and shows how a
// rejected record's violations arrive (google.rpc.BadRequest).
//
//   cd clients/typescript && npm ci
//   npm run example -- [URL] [ARTICLE_JSON]
//
// URL defaults to $MEETINGS_URL or http://127.0.0.1:50051 (gRPC over
// HTTP/2); the article to the repository's AZERTAC example. With a tokens
// file, set MEETINGS_TOKEN.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { clone, fromJson } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import {
  CreateMeetingRequestSchema,
  MeetingSchema,
  MeetingService,
  rpc,
} from "../src/index.js";

const url = process.argv[2] ?? process.env.MEETINGS_URL ?? "http://127.0.0.1:50051";
const article =
  process.argv[3] ??
  fileURLToPath(
    new URL("../../../tests/fixtures/azertac-2022-05-05-azerbaijan-japan.json", import.meta.url),
  );
const token = process.env.MEETINGS_TOKEN;

const transport = createGrpcTransport({
  baseUrl: url,
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

const request = fromJson(CreateMeetingRequestSchema, JSON.parse(readFileSync(article, "utf8")));
const created = await client.createMeeting(request, { timeoutMs: 10_000 });
const meeting = created.meeting!;
console.log(`stored ${meeting.id}: ${meeting.date} in ${meeting.location?.city}`);

let count = 0;
for await (const item of client.streamMeetingsByCountryPair(
  { countryA: "AZ", countryB: "JP" },
  { timeoutMs: 30_000 },
)) {
  count++;
  console.log(`  ${item.meeting?.date} ${item.meeting?.id} ${item.meeting?.topics.slice(0, 3).join(", ")}`);
}
console.log(`AZ-JP: ${count} meetings`);

const bad = clone(MeetingSchema, request.meeting!);
bad.date = "2022-13-40";
bad.participants[0].countryCode = "ZZ";
try {
  await client.createMeeting({ meeting: bad }, { timeoutMs: 10_000 });
  console.error("a bad record was accepted");
  process.exit(1);
} catch (err) {
  const error = ConnectError.from(err);
  console.log(`rejected: ${Code[error.code]}`);
  for (const bad of error.findDetails(rpc.BadRequestSchema)) {
    for (const v of bad.fieldViolations) {
      console.log(`  ${v.field}: ${v.description}`);
    }
  }
}
