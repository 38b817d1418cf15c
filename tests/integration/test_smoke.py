from jobkeeper import Client


async def test_enqueue_and_get(client: Client) -> None:
    job = await client.enqueue("send-email", {"to": "a@example.com"})
    assert job.queue == "communication"
    fetched = await client.get_job(job.id)
    assert fetched == job
