/** bunbox's failures to contain a run: setup errors of stage "cgroup" or "uid". */
import { BunboxError } from "../errors.ts";

/** A failure to contain a run, with the path and errno at fault (0: none). */
export class ContainmentError extends BunboxError {
  constructor(
    readonly path: string,
    readonly errno: number,
    message: string,
    stage: "cgroup" | "uid" = "cgroup",
  ) {
    super(stage, message);
  }
}
