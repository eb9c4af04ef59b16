"""Stores the example article, streams its country pair, and shows how a
rejected record's violations arrive (google.rpc.BadRequest).

    pip install clients/python
    python3 clients/python/examples/example.py [ADDRESS] [ARTICLE_JSON]

ADDRESS defaults to $MEETINGS_ADDR or localhost:50051 (plaintext); the
article defaults to the repository's AZERTAC example. With a tokens file,
set MEETINGS_TOKEN.
"""
import os
import sys
from pathlib import Path

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2

from meetings.v1 import meetings_pb2, meetings_pb2_grpc

ARTICLE = (
    Path(__file__).resolve().parents[3]
    / "tests/fixtures/azertac-2022-05-05-azerbaijan-japan.json"
)


def violations(error: grpc.RpcError) -> list[str]:
    """The field violations of a failed call, from its status details."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            found = []
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    found += [f"{v.field}: {v.description}" for v in bad.field_violations]
            return found
    return []


def main() -> int:
    address = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MEETINGS_ADDR", "localhost:50051")
    article = Path(sys.argv[2]) if len(sys.argv) > 2 else ARTICLE
    token = os.environ.get("MEETINGS_TOKEN")
    metadata = [("authorization", f"Bearer {token}")] if token else []

    with grpc.insecure_channel(address) as channel:
        client = meetings_pb2_grpc.MeetingServiceStub(channel)

        request = json_format.Parse(article.read_text(), meetings_pb2.CreateMeetingRequest())
        created = client.CreateMeeting(request, metadata=metadata, timeout=10).meeting
        print(f"stored {created.id}: {created.date} in {created.location.city}")

        pair = meetings_pb2.StreamMeetingsByCountryPairRequest(country_a="AZ", country_b="JP")
        count = 0
        for item in client.StreamMeetingsByCountryPair(pair, metadata=metadata, timeout=30):
            count += 1
            print(f"  {item.meeting.date} {item.meeting.id} {', '.join(item.meeting.topics[:3])}")
        print(f"AZ-JP: {count} meetings")

        bad = meetings_pb2.Meeting()
        bad.CopyFrom(request.meeting)
        bad.date = "2022-13-40"
        bad.participants[0].country_code = "ZZ"
        try:
            client.CreateMeeting(meetings_pb2.CreateMeetingRequest(meeting=bad), metadata=metadata, timeout=10)
        except grpc.RpcError as error:
            print(f"rejected: {error.code().name}")
            for line in violations(error):
                print(f"  {line}")
        else:
            print("a bad record was accepted", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
