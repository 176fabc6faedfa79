-- metrics becomes a WITHOUT ROWID table clustered on its primary key (run_id, key, step): one B-tree instead of a
-- rowid table plus the primary key's index, so reading one series in step order (get-history, charts) is a range
-- scan of adjacent rows instead of one table lookup per point. Same columns, same key, same rows (custom migration:
-- drizzle's schema cannot say WITHOUT ROWID; db/schema/runs.ts notes it).
CREATE TABLE `__new_metrics` (
	`run_id` integer NOT NULL,
	`key` text NOT NULL,
	`step` integer NOT NULL,
	`epoch` real NOT NULL,
	`value` real NOT NULL,
	`wall_time_ms` integer NOT NULL,
	PRIMARY KEY(`run_id`, `key`, `step`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `__new_metrics` (`run_id`, `key`, `step`, `epoch`, `value`, `wall_time_ms`) SELECT `run_id`, `key`, `step`, `epoch`, `value`, `wall_time_ms` FROM `metrics` ORDER BY `run_id`, `key`, `step`;
--> statement-breakpoint
DROP TABLE `metrics`;
--> statement-breakpoint
ALTER TABLE `__new_metrics` RENAME TO `metrics`;
