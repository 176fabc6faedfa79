-- PostgreSQL form of the SQLite migrations' protective triggers (0001_audit_append_only, 0005_witness_cosignatures_append_only,
-- 0008_run_interventions): same trigger names, same messages. Keep this file when regenerating migrations.
-- PostgreSQL also has TRUNCATE, which row triggers do not see: each append-only table rejects it too.
CREATE FUNCTION runledger_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'restrict_violation';
END;
$$;
--> statement-breakpoint
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
FOR EACH ROW EXECUTE FUNCTION runledger_reject_change('audit_events is append-only: UPDATE rejected');
--> statement-breakpoint
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION runledger_reject_change('audit_events is append-only: DELETE rejected');
--> statement-breakpoint
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
FOR EACH STATEMENT EXECUTE FUNCTION runledger_reject_change('audit_events is append-only: TRUNCATE rejected');
--> statement-breakpoint
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
FOR EACH ROW EXECUTE FUNCTION runledger_reject_change('audit_checkpoints is append-only: UPDATE rejected');
--> statement-breakpoint
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
FOR EACH ROW EXECUTE FUNCTION runledger_reject_change('audit_checkpoints is append-only: DELETE rejected');
--> statement-breakpoint
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
FOR EACH STATEMENT EXECUTE FUNCTION runledger_reject_change('audit_checkpoints is append-only: TRUNCATE rejected');
--> statement-breakpoint
-- Decisions and signatures are immutable records: a correction is a new row, never an edit.
CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
FOR EACH ROW EXECUTE FUNCTION runledger_reject_change('decisions are immutable: UPDATE rejected (add a correction instead)');
--> statement-breakpoint
CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
FOR EACH ROW EXECUTE FUNCTION runledger_reject_change('decisions are immutable: DELETE rejected');
--> statement-breakpoint
CREATE TRIGGER decisions_no_truncate BEFORE TRUNCATE ON decisions
FOR EACH STATEMENT EXECUTE FUNCTION runledger_reject_change('decisions are immutable: TRUNCATE rejected');
--> statement-breakpoint
CREATE TRIGGER signatures_no_update BEFORE UPDATE ON signatures
FOR EACH ROW EXECUTE FUNCTION runledger_reject_change('signatures are immutable: UPDATE rejected');
--> statement-breakpoint
CREATE TRIGGER signatures_no_delete BEFORE DELETE ON signatures
FOR EACH ROW EXECUTE FUNCTION runledger_reject_change('signatures are immutable: DELETE rejected');
--> statement-breakpoint
CREATE TRIGGER signatures_no_truncate BEFORE TRUNCATE ON signatures
FOR EACH STATEMENT EXECUTE FUNCTION runledger_reject_change('signatures are immutable: TRUNCATE rejected');
--> statement-breakpoint
-- Model-card and datasheet sections are versioned: an edit is a new version row, never an update.
CREATE TRIGGER documents_no_update BEFORE UPDATE ON documents
FOR EACH ROW EXECUTE FUNCTION runledger_reject_change('document versions are immutable: UPDATE rejected (save a new version instead)');
--> statement-breakpoint
CREATE TRIGGER documents_no_delete BEFORE DELETE ON documents
FOR EACH ROW EXECUTE FUNCTION runledger_reject_change('document versions are immutable: DELETE rejected');
--> statement-breakpoint
CREATE TRIGGER documents_no_truncate BEFORE TRUNCATE ON documents
FOR EACH STATEMENT EXECUTE FUNCTION runledger_reject_change('document versions are immutable: TRUNCATE rejected');
--> statement-breakpoint
-- Witness cosignatures are evidence received from outside: append-only, like the ledger they vouch for.
CREATE TRIGGER witness_cosignatures_no_update BEFORE UPDATE ON witness_cosignatures
FOR EACH ROW EXECUTE FUNCTION runledger_reject_change('witness_cosignatures is append-only: UPDATE rejected');
--> statement-breakpoint
CREATE TRIGGER witness_cosignatures_no_delete BEFORE DELETE ON witness_cosignatures
FOR EACH ROW EXECUTE FUNCTION runledger_reject_change('witness_cosignatures is append-only: DELETE rejected');
--> statement-breakpoint
CREATE TRIGGER witness_cosignatures_no_truncate BEFORE TRUNCATE ON witness_cosignatures
FOR EACH STATEMENT EXECUTE FUNCTION runledger_reject_change('witness_cosignatures is append-only: TRUNCATE rejected');
--> statement-breakpoint
-- Interventions are records: never deleted; the only edit is the one transition out of "pending", which leaves the request as it was.
CREATE TRIGGER run_interventions_no_delete BEFORE DELETE ON run_interventions
FOR EACH ROW EXECUTE FUNCTION runledger_reject_change('run interventions are records: DELETE rejected');
--> statement-breakpoint
CREATE TRIGGER run_interventions_no_truncate BEFORE TRUNCATE ON run_interventions
FOR EACH STATEMENT EXECUTE FUNCTION runledger_reject_change('run interventions are records: TRUNCATE rejected');
--> statement-breakpoint
CREATE TRIGGER run_interventions_one_transition BEFORE UPDATE ON run_interventions
FOR EACH ROW WHEN (OLD.status <> 'pending' OR NEW.status = 'pending'
  OR NEW.id IS DISTINCT FROM OLD.id OR NEW.run_id IS DISTINCT FROM OLD.run_id OR NEW.kind IS DISTINCT FROM OLD.kind
  OR NEW.changes_json IS DISTINCT FROM OLD.changes_json OR NEW.from_checkpoint_id IS DISTINCT FROM OLD.from_checkpoint_id
  OR NEW.rationale IS DISTINCT FROM OLD.rationale OR NEW.requested_by IS DISTINCT FROM OLD.requested_by
  OR NEW.requested_at IS DISTINCT FROM OLD.requested_at)
EXECUTE FUNCTION runledger_reject_change('run interventions change only once, from pending to applied, cancelled or rejected: UPDATE rejected');
