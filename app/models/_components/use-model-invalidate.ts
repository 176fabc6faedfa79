"use client";
/** After a registry write, refresh every registry query (the model, the list, histories) so all panels agree. */
import { useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";

export function useInvalidateRegistry() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  return () => queryClient.invalidateQueries({ queryKey: trpc.models.pathKey() });
}
