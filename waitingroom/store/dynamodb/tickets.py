"""Tickets: an admitted ticket's item (T#k beside its counter) and the batches' LEDGER counters.

A ticket item's life:  admitted ──pick_up (before deadline)──> picked ──complete (before exp)──>
completed. Each step is one transaction with a +1 on the ledger of the ticket's batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from waitingroom.domain import Batch, LedgerCounts
from waitingroom.store.dynamodb.table import (
    DynamoTable,
    as_float,
    as_int,
    attrs,
    counter_pk,
    key,
    ledger_pk,
    ticket_sk,
)
from waitingroom.store.interface import TICKET_KEEP_SECONDS, AdmittedTicket, Conflict


class DynamoTickets(DynamoTable):
    def put_admitted(self, room: str, tickets: Sequence[AdmittedTicket]) -> int:
        """Write admitted tickets; an existing one is left alone (exactly once). Returns how
        many were new."""

        def put(t: AdmittedTicket) -> int:
            item = {
                "pk": counter_pk(room, t.slot, t.shard),
                "sk": ticket_sk(t.k),
                "st": "admitted",
                "token": t.token,
                "seq": t.seq,
                "lshards": t.ledger_shards,
                "admitted_at": t.admitted_at,
                "deadline": t.pickup_deadline,
                "exp": t.expires_at,
                "expires_at": int(t.expires_at) + TICKET_KEEP_SECONDS,
            }
            try:
                self._call(
                    "put_item", Item=attrs(item), ConditionExpression="attribute_not_exists(pk)"
                )
                return 1
            except Conflict:
                return 0

        if len(tickets) <= 2:
            return sum(put(t) for t in tickets)
        with ThreadPoolExecutor(max_workers=min(16, len(tickets))) as pool:
            return sum(pool.map(put, tickets))

    def get_ticket(
        self, room: str, slot: int, shard: int, k: int, consistent: bool = True
    ) -> AdmittedTicket | None:
        item = self._get(counter_pk(room, slot, shard), ticket_sk(k), consistent)
        if item is None:
            return None
        return AdmittedTicket(
            slot=slot,
            shard=shard,
            k=k,
            state=str(item.get("st", "")),
            token=str(item.get("token", "")),
            seq=as_int(item.get("seq")),
            ledger_shards=as_int(item.get("lshards"), 1),
            admitted_at=as_float(item.get("admitted_at")),
            pickup_deadline=as_float(item.get("deadline")),
            expires_at=as_float(item.get("exp")),
        )

    def _ticket_transition(
        self,
        room: str,
        t: AdmittedTicket,
        ledger_shard: int,
        *,
        from_state: str,
        to_state: str,
        deadline_attr: str,
        counter: str,
        now: float,
    ) -> None:
        ticket = {
            "Key": key(counter_pk(room, t.slot, t.shard), ticket_sk(t.k)),
            "UpdateExpression": "SET st = :to, #at = :now",
            "ConditionExpression": "st = :from AND #dl > :now",
            "ExpressionAttributeNames": {"#at": f"{to_state}_at", "#dl": deadline_attr},
            "ExpressionAttributeValues": attrs({":to": to_state, ":from": from_state, ":now": now}),
        }
        ledger = {
            "Key": key(ledger_pk(room, t.seq, ledger_shard), "LEDGER"),
            "UpdateExpression": "ADD #c :one SET expires_at = :ttl",
            "ExpressionAttributeNames": {"#c": counter},
            "ExpressionAttributeValues": attrs(
                {":one": 1, ":ttl": int(t.expires_at) + TICKET_KEEP_SECONDS}
            ),
        }
        self._transact([{"Update": ticket}, {"Update": ledger}])

    def pick_up(self, room: str, t: AdmittedTicket, ledger_shard: int, now: float) -> None:
        """admitted -> picked, counted in the batch's ledger; Conflict once the window closed."""
        self._ticket_transition(
            room,
            t,
            ledger_shard,
            from_state="admitted",
            to_state="picked",
            deadline_attr="deadline",
            counter="picked",
            now=now,
        )

    def complete(self, room: str, t: AdmittedTicket, ledger_shard: int, now: float) -> None:
        """picked -> completed, counted in the batch's ledger; Conflict if not picked/expired."""
        self._ticket_transition(
            room,
            t,
            ledger_shard,
            from_state="picked",
            to_state="completed",
            deadline_attr="exp",
            counter="completed",
            now=now,
        )

    def read_ledger(self, room: str, batches: Sequence[Batch]) -> dict[int, LedgerCounts]:
        keys = [
            key(ledger_pk(room, b.seq, n), "LEDGER")
            for b in batches
            for n in range(b.ledger_shards)
        ]
        totals: dict[int, list[int]] = {b.seq: [0, 0] for b in batches}
        for item in self._batch_get(keys, consistent=True):
            seq = int(str(item["pk"]).rsplit("#", 2)[1])
            unheld = as_int(item.get("unheld"))  # picked up and done at once, by nobody
            totals[seq][0] += as_int(item.get("picked")) + unheld
            totals[seq][1] += as_int(item.get("completed")) + unheld
        return {seq: LedgerCounts(p, c) for seq, (p, c) in totals.items()}

    def release_unheld(self, room: str, batch: Batch, n: int) -> None:
        """Free the places of the batch's `n` unheld numbers at the next tick: they count as
        picked up and completed. SET, not ADD: finishing an interrupted batch again, or sending
        the write twice, still counts each number once."""
        self._call(
            "update_item",
            Key=key(ledger_pk(room, batch.seq, 0), "LEDGER"),
            UpdateExpression="SET unheld = :n, expires_at = if_not_exists(expires_at, :ttl)",
            ExpressionAttributeValues=attrs(
                {":n": n, ":ttl": int(batch.expires_at) + TICKET_KEEP_SECONDS}
            ),
        )
