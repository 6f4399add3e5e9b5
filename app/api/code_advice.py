"""What each error code means and what the sender should do: the `explanation` of a problem.

One short paragraph per code in ``app.contract.errors.ERROR_CODES`` (a test holds every code
to having one), written for the engineer who owns the producer.
"""

from __future__ import annotations

ADVICE: dict[str, str] = {
    "event_too_large": (
        "The record is larger than 900 KB, the most one event may be. Split what it carries "
        "into several smaller events, or move large blobs out of the event and send a "
        "reference to them instead."
    ),
    "empty_value": (
        "The record's value is null or zero bytes, so there is no event to store. Check the "
        "producer does not send tombstones or empty messages to the inbound topic."
    ),
    "invalid_utf8": (
        "The record's bytes are not valid UTF-8 text. Encode the event as UTF-8 JSON; a "
        "producer serialising with another charset or sending binary (Avro, Protobuf, "
        "compressed bytes) to this topic causes this."
    ),
    "invalid_json": (
        "The record is not valid JSON. Look at the payload of a sample error: truncated "
        "messages, single quotes, trailing commas or NaN usually mean the producer builds "
        "JSON by hand; use a JSON serializer."
    ),
    "not_an_object": (
        "The record is valid JSON but not an object (an array, a string, a number). Send "
        "one event per record as a JSON object of properties."
    ),
    "invalid_collection_name": (
        "The collection (topic) name is not allowed: names use only letters, digits, `.`, "
        "`_` and `-`, are not `.` or `..`, and do not end in `-DLQ` (dead-letter topics are "
        "read-only). Produce to a collection with such a name."
    ),
    "collection_name_too_long": (
        "The collection name is longer than 64 characters. Use a shorter collection name."
    ),
    "unknown_project": (
        "The record names a project that does not exist or is disabled. Check the "
        "producer's project id and that the project is active."
    ),
    "key_not_permitted": (
        "The key the record was sent with may not write to this project (revoked, "
        "read-only, or another project's). Send it with a write or master key of this "
        "project; the keys breakdown shows which key sent it."
    ),
    "invalid_property_name": (
        "A property name is not allowed: names must be 1 to 256 characters, without `.`, "
        "not starting with `$` and without NUL. Rename the property at the location shown; "
        "names coming from data (ids, user input) belong in values, not in names."
    ),
    "reserved_property": (
        "The event sets a property under `keen` that the server owns. Under `keen` send only "
        "`timestamp` and `addons`; move other properties out of `keen`."
    ),
    "invalid_timestamp": (
        "`keen.timestamp` is not an ISO-8601 date-time. Send e.g. "
        "`2026-11-24T19:07:46.123Z`, or leave it out to use the time of receipt."
    ),
    "invalid_property_value": (
        "A string value holds the NUL character (`\\u0000`), which cannot be stored. Remove "
        "it from the value at the location shown, or replace it, in the producer; a fix can "
        "`replace` the value before replaying the errors."
    ),
    "too_deeply_nested": (
        "The event nests objects or arrays more than 32 levels deep. Flatten the structure "
        "at the location shown to at most 32 levels."
    ),
    "addon_error": (
        "An entry of `keen.addons` could not be run (an unknown add-on, a missing or "
        "malformed input or output path). Read the message of a sample error and fix the "
        "add-on entry at the location shown."
    ),
}


def advice_for(code: str) -> str:
    """The explanation of ``code``; a neutral sentence for a code this version does not know."""
    return ADVICE.get(code, f"Events were refused with the code `{code}`; see a sample error.")
