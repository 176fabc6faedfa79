CREATE TABLE "artifact_blobs" (
	"sha256" text PRIMARY KEY NOT NULL,
	"bytes" bigint NOT NULL,
	"chunks" integer NOT NULL,
	"created_at" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "artifact_chunks" (
	"sha256" text NOT NULL,
	"idx" integer NOT NULL,
	"data" "bytea" NOT NULL,
	CONSTRAINT "artifact_chunks_sha256_idx_pk" PRIMARY KEY("sha256","idx")
);
--> statement-breakpoint
ALTER TABLE "artifact_chunks" ADD CONSTRAINT "artifact_chunks_sha256_artifact_blobs_sha256_fk" FOREIGN KEY ("sha256") REFERENCES "public"."artifact_blobs"("sha256") ON DELETE no action ON UPDATE no action;