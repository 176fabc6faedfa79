CREATE TABLE `sessions` (
	`id_hash` text PRIMARY KEY NOT NULL,
	`user_id` integer NOT NULL,
	`created_at` text NOT NULL,
	`expires_at` text NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `users` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`email` text NOT NULL,
	`name` text NOT NULL,
	`role` text NOT NULL,
	`password_hash` text NOT NULL,
	`disabled` integer DEFAULT false NOT NULL,
	`created_at` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `users_email_unique` ON `users` (`email`);--> statement-breakpoint
CREATE TABLE `experiments` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`project_id` integer NOT NULL,
	`name` text NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`created_by` integer NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`created_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `experiments_project_name` ON `experiments` (`project_id`,`name`);--> statement-breakpoint
CREATE TABLE `projects` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`created_by` integer NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`created_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `projects_name_unique` ON `projects` (`name`);--> statement-breakpoint
CREATE TABLE `dataset_versions` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`dataset_id` integer NOT NULL,
	`recipe_json` text NOT NULL,
	`recipe_sha256` text NOT NULL,
	`report_json` text NOT NULL,
	`sha256` text NOT NULL,
	`row_count` integer NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`dataset_id`) REFERENCES `datasets`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `dataset_versions_recipe_rows` ON `dataset_versions` (`dataset_id`,`recipe_sha256`,`sha256`);--> statement-breakpoint
CREATE TABLE `datasets` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`source` text NOT NULL,
	`builtin_name` text,
	`origin` text DEFAULT '' NOT NULL,
	`licence` text DEFAULT '' NOT NULL,
	`sha256` text NOT NULL,
	`byte_size` integer NOT NULL,
	`schema_json` text NOT NULL,
	`row_count` integer NOT NULL,
	`created_by` integer NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`created_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `datasets_sha256_unique` ON `datasets` (`sha256`);--> statement-breakpoint
CREATE TABLE `splits` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`dataset_version_id` integer NOT NULL,
	`spec_json` text NOT NULL,
	`manifest_json` text NOT NULL,
	`sha256` text NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`dataset_version_id`) REFERENCES `dataset_versions`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `splits_manifest` ON `splits` (`dataset_version_id`,`sha256`);--> statement-breakpoint
CREATE TABLE `checkpoints` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`run_id` integer NOT NULL,
	`epoch` integer NOT NULL,
	`step` integer NOT NULL,
	`sha256` text NOT NULL,
	`bytes` integer NOT NULL,
	`metrics_json` text NOT NULL,
	`is_best` integer DEFAULT false NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `checkpoints_run_epoch` ON `checkpoints` (`run_id`,`epoch`);--> statement-breakpoint
CREATE TABLE `decisions` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`run_id` integer NOT NULL,
	`kind` text NOT NULL,
	`path` text NOT NULL,
	`old_value_json` text,
	`new_value_json` text,
	`rationale` text NOT NULL,
	`corrects_decision_id` integer,
	`author_id` integer NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`corrects_decision_id`) REFERENCES `decisions`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`author_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `decisions_run` ON `decisions` (`run_id`);--> statement-breakpoint
CREATE TABLE `evaluations` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`run_id` integer NOT NULL,
	`checkpoint_id` integer NOT NULL,
	`split_id` integer,
	`partition` text NOT NULL,
	`data_sha256` text NOT NULL,
	`metrics_json` text NOT NULL,
	`confusion_json` text,
	`created_by` integer NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`checkpoint_id`) REFERENCES `checkpoints`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`split_id`) REFERENCES `splits`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`created_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `metric_rollups` (
	`run_id` integer NOT NULL,
	`key` text NOT NULL,
	`block` integer NOT NULL,
	`first_step` integer NOT NULL,
	`last_step` integer NOT NULL,
	`min_step` integer NOT NULL,
	`min_value` real NOT NULL,
	`max_step` integer NOT NULL,
	`max_value` real NOT NULL,
	`count` integer NOT NULL,
	PRIMARY KEY(`run_id`, `key`, `block`)
);
--> statement-breakpoint
CREATE TABLE `metric_summaries` (
	`run_id` integer NOT NULL,
	`key` text NOT NULL,
	`last` real NOT NULL,
	`last_step` integer NOT NULL,
	`min` real NOT NULL,
	`max` real NOT NULL,
	`count` integer NOT NULL,
	PRIMARY KEY(`run_id`, `key`)
);
--> statement-breakpoint
CREATE INDEX `metric_summaries_key_last` ON `metric_summaries` (`key`,`last`);--> statement-breakpoint
CREATE TABLE `metrics` (
	`run_id` integer NOT NULL,
	`key` text NOT NULL,
	`step` integer NOT NULL,
	`epoch` real NOT NULL,
	`value` real NOT NULL,
	`wall_time_ms` integer NOT NULL,
	PRIMARY KEY(`run_id`, `key`, `step`)
);
--> statement-breakpoint
CREATE TABLE `run_params` (
	`run_id` integer NOT NULL,
	`key` text NOT NULL,
	`value_text` text,
	`value_num` real,
	PRIMARY KEY(`run_id`, `key`),
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `run_params_key_num` ON `run_params` (`key`,`value_num`);--> statement-breakpoint
CREATE INDEX `run_params_key_text` ON `run_params` (`key`,`value_text`);--> statement-breakpoint
CREATE TABLE `run_tags` (
	`run_id` integer NOT NULL,
	`tag` text NOT NULL,
	`created_by` integer NOT NULL,
	`created_at` text NOT NULL,
	PRIMARY KEY(`run_id`, `tag`),
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`created_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `run_tags_tag` ON `run_tags` (`tag`);--> statement-breakpoint
CREATE TABLE `runs` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`experiment_id` integer NOT NULL,
	`name` text NOT NULL,
	`status` text NOT NULL,
	`config_json` text NOT NULL,
	`config_sha256` text NOT NULL,
	`seed` integer NOT NULL,
	`origin` text DEFAULT 'new' NOT NULL,
	`parent_run_id` integer,
	`parent_checkpoint_id` integer,
	`dataset_version_id` integer,
	`split_id` integer,
	`backend` text,
	`backend_reason` text,
	`environment_json` text,
	`param_count` integer,
	`memory_json` text,
	`progress_json` text,
	`final_weights_sha256` text,
	`error` text,
	`created_by` integer NOT NULL,
	`created_at` text NOT NULL,
	`started_at` text,
	`finished_at` text,
	FOREIGN KEY (`experiment_id`) REFERENCES `experiments`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`parent_run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`dataset_version_id`) REFERENCES `dataset_versions`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`split_id`) REFERENCES `splits`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`created_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `runs_experiment` ON `runs` (`experiment_id`);--> statement-breakpoint
CREATE INDEX `runs_status` ON `runs` (`status`);--> statement-breakpoint
CREATE TABLE `model_alias_events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`model_id` integer NOT NULL,
	`alias` text NOT NULL,
	`model_version_id` integer,
	`promotion_request_id` integer,
	`moved_by` integer NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`model_id`) REFERENCES `models`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`model_version_id`) REFERENCES `model_versions`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`moved_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `model_alias_events_model_alias` ON `model_alias_events` (`model_id`,`alias`,`created_at`);--> statement-breakpoint
CREATE TABLE `model_versions` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`model_id` integer NOT NULL,
	`version` integer NOT NULL,
	`run_id` integer NOT NULL,
	`checkpoint_id` integer NOT NULL,
	`weights_sha256` text NOT NULL,
	`created_by` integer NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`model_id`) REFERENCES `models`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`checkpoint_id`) REFERENCES `checkpoints`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`created_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `model_versions_model_version` ON `model_versions` (`model_id`,`version`);--> statement-breakpoint
CREATE TABLE `models` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`approvals_required` integer DEFAULT 1 NOT NULL,
	`created_by` integer NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`created_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `models_name_unique` ON `models` (`name`);--> statement-breakpoint
CREATE TABLE `promotion_requests` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`model_version_id` integer NOT NULL,
	`alias` text NOT NULL,
	`evaluation_id` integer NOT NULL,
	`rationale` text NOT NULL,
	`record_sha256` text NOT NULL,
	`status` text NOT NULL,
	`requested_by` integer NOT NULL,
	`created_at` text NOT NULL,
	`decided_at` text,
	FOREIGN KEY (`model_version_id`) REFERENCES `model_versions`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`evaluation_id`) REFERENCES `evaluations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`requested_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `signatures` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`user_id` integer NOT NULL,
	`printed_name` text NOT NULL,
	`meaning` text NOT NULL,
	`record_type` text NOT NULL,
	`record_id` integer NOT NULL,
	`record_sha256` text NOT NULL,
	`comment` text DEFAULT '' NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `audit_checkpoints` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`tree_size` integer NOT NULL,
	`root_hash` text NOT NULL,
	`at` text NOT NULL,
	`reason` text NOT NULL,
	`key_fingerprint` text NOT NULL,
	`signature` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `audit_events` (
	`seq` integer PRIMARY KEY NOT NULL,
	`at` text NOT NULL,
	`actor_id` integer,
	`actor_name` text NOT NULL,
	`role` text NOT NULL,
	`action` text NOT NULL,
	`entity_type` text NOT NULL,
	`entity_id` text NOT NULL,
	`payload` text NOT NULL,
	`leaf_hash` text NOT NULL,
	`chain_hash` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `audit_events_entity` ON `audit_events` (`entity_type`,`entity_id`);--> statement-breakpoint
CREATE INDEX `audit_events_action` ON `audit_events` (`action`);--> statement-breakpoint
CREATE TABLE `documents` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`subject_type` text NOT NULL,
	`subject_id` integer NOT NULL,
	`section` text NOT NULL,
	`version` integer NOT NULL,
	`body` text NOT NULL,
	`supersedes_id` integer,
	`author_id` integer NOT NULL,
	`created_at` text NOT NULL,
	`sha256` text NOT NULL,
	FOREIGN KEY (`supersedes_id`) REFERENCES `documents`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`author_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `documents_subject_section_version` ON `documents` (`subject_type`,`subject_id`,`section`,`version`);--> statement-breakpoint
CREATE INDEX `documents_subject` ON `documents` (`subject_type`,`subject_id`);