"use client";
/** Home: projects and their experiments; engineers create both here. */
import Link from "next/link";
import { useEffect, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell, type Me } from "@/app/_components/shell";
import { Empty, ErrorState, FormError, Loading } from "@/app/_components/states";
import { formatTime } from "@/app/_components/format";
import { inboxLabel, useReviewerInbox } from "@/app/_components/inbox-link";

function NewExperimentForm({ projectId }: { projectId: number }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const create = useMutation(
    trpc.projects.createExperiment.mutationOptions({
      onSuccess: () => {
        setName("");
        void queryClient.invalidateQueries({ queryKey: trpc.projects.list.queryKey() });
      },
    }),
  );
  return (
    <form
      className="row"
      onSubmit={(e) => {
        e.preventDefault();
        create.mutate({ projectId, name });
      }}
    >
      <input aria-label="New experiment name" placeholder="New experiment name" value={name} onChange={(e) => setName(e.target.value)} />
      <button type="submit" disabled={create.isPending}>
        Create experiment
      </button>
      <FormError error={create.error} />
    </form>
  );
}

function NewProjectForm() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const create = useMutation(
    trpc.projects.create.mutationOptions({
      onSuccess: () => {
        setName("");
        void queryClient.invalidateQueries({ queryKey: trpc.projects.list.queryKey() });
      },
    }),
  );
  return (
    <form
      className="row"
      onSubmit={(e) => {
        e.preventDefault();
        create.mutate({ name });
      }}
    >
      <input aria-label="New project name" placeholder="New project name" value={name} onChange={(e) => setName(e.target.value)} />
      <button type="submit" disabled={create.isPending}>
        Create project
      </button>
      <FormError error={create.error} />
    </form>
  );
}

/** For reviewers: how many promotion requests wait for their signature, with the way to the inbox. */
function ReviewInboxPanel() {
  const inbox = useReviewerInbox(true);
  return (
    <section className="panel" aria-label="Review inbox">
      <div className="row">
        <h2 style={{ margin: 0 }}>Review inbox</h2>
        {inbox.data ? (
          <span className={`badge${inbox.data.count > 0 ? " attention" : ""}`} aria-label={inboxLabel(inbox.data.count)}>
            {inbox.data.count}
          </span>
        ) : null}
        <span className="spacer" />
        <Link href="/inbox">Open inbox</Link>
      </div>
      {inbox.isPending ? (
        <Loading what="Counting requests waiting for you" />
      ) : inbox.error ? (
        <ErrorState error={inbox.error} title="Could not count your requests" />
      ) : inbox.data.count === 0 ? (
        <p className="muted" style={{ margin: "6px 0 0" }}>
          Nothing waits for your review. Requests for production appear here when an engineer submits one you may sign.
        </p>
      ) : (
        <p style={{ margin: "6px 0 0" }}>
          {inbox.data.count} promotion request{inbox.data.count === 1 ? "" : "s"} wait{inbox.data.count === 1 ? "s" : ""} for your
          signature, the oldest from {formatTime(inbox.data.requests[0]!.createdAt)}.
        </p>
      )}
    </section>
  );
}

function Projects({ me }: { me: Me }) {
  const trpc = useTRPC();
  const projects = useQuery(trpc.projects.list.queryOptions());
  const canEdit = me.role === "engineer";
  // A link to /#project-N (e.g. from the search) arrives before the projects are loaded, so the browser finds no
  // such element to scroll to: scroll once they are shown, and on later hash changes.
  const loaded = projects.data !== undefined;
  useEffect(() => {
    if (!loaded) return;
    const scrollToHash = () => {
      const id = decodeURIComponent(window.location.hash.slice(1));
      if (id.startsWith("project-")) document.getElementById(id)?.scrollIntoView({ block: "start" });
    };
    scrollToHash();
    window.addEventListener("hashchange", scrollToHash);
    return () => window.removeEventListener("hashchange", scrollToHash);
  }, [loaded]);
  return (
    <>
      <div className="row">
        <h1>Projects</h1>
        <span className="spacer" />
        {canEdit || me.role === "admin" ? <NewProjectForm /> : null}
      </div>
      <p className="subtitle">Each project groups experiments; each experiment groups the runs you compare.</p>
      {me.role === "reviewer" ? <ReviewInboxPanel /> : null}
      {projects.isPending ? (
        <Loading what="Loading projects" />
      ) : projects.error ? (
        <ErrorState error={projects.error} />
      ) : projects.data.length === 0 ? (
        <Empty
          title="No projects yet"
          hint={canEdit ? "Create a project above, then an experiment inside it." : "An engineer creates projects; ask one to start."}
        />
      ) : (
        projects.data.map((p) => (
          <section className="panel" key={p.id} id={`project-${p.id}`} aria-label={`Project ${p.name}`}>
            <h2 style={{ marginTop: 0 }}>{p.name}</h2>
            {p.description ? <p className="muted">{p.description}</p> : null}
            {p.experiments.length === 0 ? (
              <Empty title="No experiments" hint={canEdit ? "Create one below to launch runs." : "No experiments in this project yet."} />
            ) : (
              <table>
                <thead>
                  <tr>
                    <th>Experiment</th>
                    <th className="num">Runs</th>
                    <th>Created (UTC)</th>
                  </tr>
                </thead>
                <tbody>
                  {p.experiments.map((e) => (
                    <tr key={e.id}>
                      <td>
                        <Link href={`/experiments/${e.id}`}>{e.name}</Link>
                      </td>
                      <td className="num">{e.runCount}</td>
                      <td>{formatTime(e.createdAt)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            {canEdit ? (
              <div style={{ marginTop: 12 }}>
                <NewExperimentForm projectId={p.id} />
              </div>
            ) : null}
          </section>
        ))
      )}
    </>
  );
}

export default function HomePage() {
  return <Shell>{(me) => <Projects me={me} />}</Shell>;
}
