-- Witness cosignatures are evidence received from outside: append-only, like the ledger they vouch for.
CREATE TRIGGER witness_cosignatures_no_update BEFORE UPDATE ON witness_cosignatures
BEGIN SELECT RAISE(ABORT, 'witness_cosignatures is append-only: UPDATE rejected'); END;
--> statement-breakpoint
CREATE TRIGGER witness_cosignatures_no_delete BEFORE DELETE ON witness_cosignatures
BEGIN SELECT RAISE(ABORT, 'witness_cosignatures is append-only: DELETE rejected'); END;
