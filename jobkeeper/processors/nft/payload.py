"""The payload of `nft-mint` (the Solana processor)."""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from jobkeeper.processors.fields import Extra, Id, Payload, SolanaAddress, Url

JOB_TYPE = "nft-mint"


class NftMint(Payload):
    """One ticket minted to the buyer's Solana wallet; eventId with seatId or ticketId is the key."""

    eventId: Id
    seatId: Id | None = None
    ticketId: Id | None = None
    wallet: SolanaAddress
    userId: Id | None = None
    venueId: Id | None = None
    orderId: Id | None = None
    metadataUri: Url | None = None
    metadata: Extra | None = None

    @model_validator(mode="after")
    def _seat_or_ticket(self) -> Self:
        if self.seatId is None and self.ticketId is None:
            raise ValueError("an NFT mint needs a seatId or a ticketId")
        return self


MODELS: dict[str, type[Payload]] = {JOB_TYPE: NftMint}
