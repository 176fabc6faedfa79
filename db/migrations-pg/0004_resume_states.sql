CREATE TABLE "resume_states" (
	"run_id" bigint NOT NULL,
	"epoch" bigint NOT NULL,
	"state_sha256" text NOT NULL,
	CONSTRAINT "resume_states_run_id_epoch_pk" PRIMARY KEY("run_id","epoch")
);
--> statement-breakpoint
ALTER TABLE "resume_states" ADD CONSTRAINT "resume_states_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE no action ON UPDATE no action;