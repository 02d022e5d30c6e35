"""What every service needs: the event contract, outbox/inbox delivery, Kafka and database
plumbing, telemetry and settings. Domain rules live in the service that owns them."""
