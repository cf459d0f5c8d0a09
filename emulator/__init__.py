"""Both replication regions on one machine, on moto, running the real handlers from lambda/."""
