"use client";
/** Home: projects and their experiments; engineers create both here. */
import Link from "next/link";
import { useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell, type Me } from "@/app/_components/shell";
import { Empty, ErrorState, FormError, Loading } from "@/app/_components/states";
import { formatTime } from "@/app/_components/format";

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

function Projects({ me }: { me: Me }) {
  const trpc = useTRPC();
  const projects = useQuery(trpc.projects.list.queryOptions());
  const canEdit = me.role === "engineer";
  return (
    <>
      <div className="row">
        <h1>Projects</h1>
        <span className="spacer" />
        {canEdit || me.role === "admin" ? <NewProjectForm /> : null}
      </div>
      <p className="subtitle">Each project groups experiments; each experiment groups the runs you compare.</p>
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
          <section className="panel" key={p.id} aria-label={`Project ${p.name}`}>
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
