ALTER TABLE `evaluations` ADD `source` text DEFAULT 'training' NOT NULL;--> statement-breakpoint
-- Backfill: evaluations recorded before this column existed were requested when their audit event says so.
UPDATE `evaluations` SET `source` = 'requested' WHERE `id` IN (SELECT CAST(`entity_id` AS INTEGER) FROM `audit_events` WHERE `action` = 'evaluation.create' AND json_extract(`payload`, '$.requested') = 1);
