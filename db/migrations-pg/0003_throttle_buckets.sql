CREATE TABLE "throttle_buckets" (
	"key" text PRIMARY KEY NOT NULL,
	"failures" bigint NOT NULL,
	"window_ends_at" bigint NOT NULL,
	"wait_until" bigint NOT NULL,
	"expires_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE INDEX "throttle_buckets_expires_at" ON "throttle_buckets" USING btree ("expires_at");