"""Flow control: outbound rate limiters shared by all workers (and, in the claim, tenant fairness)."""
