CREATE TABLE `run_leases` (
	`run_id` integer PRIMARY KEY NOT NULL,
	`owner` text NOT NULL,
	`host` text NOT NULL,
	`pid` integer NOT NULL,
	`acquired_at` text NOT NULL,
	`heartbeat_at` integer NOT NULL,
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action
);
