CREATE TABLE `witness_cosignatures` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`checkpoint_id` integer NOT NULL,
	`origin` text NOT NULL,
	`tree_size` integer NOT NULL,
	`root_hash` text NOT NULL,
	`witness_name` text NOT NULL,
	`key_id` text NOT NULL,
	`timestamp` integer NOT NULL,
	`signature` text NOT NULL,
	`received_at` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `witness_cosignatures_unique` ON `witness_cosignatures` (`witness_name`,`key_id`,`tree_size`,`root_hash`);--> statement-breakpoint
CREATE INDEX `witness_cosignatures_size` ON `witness_cosignatures` (`tree_size`);--> statement-breakpoint
CREATE TABLE `witness_status` (
	`url` text PRIMARY KEY NOT NULL,
	`witness_name` text NOT NULL,
	`key_id` text NOT NULL,
	`reachable` integer,
	`cosigned_size` integer,
	`last_attempt_at` text,
	`last_success_at` text,
	`last_error` text,
	`last_error_at` text,
	`failing_since` text
);
