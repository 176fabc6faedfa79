CREATE TABLE `throttle_buckets` (
	`key` text PRIMARY KEY NOT NULL,
	`failures` integer NOT NULL,
	`window_ends_at` integer NOT NULL,
	`wait_until` integer NOT NULL,
	`expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `throttle_buckets_expires_at` ON `throttle_buckets` (`expires_at`);