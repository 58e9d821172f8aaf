import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

// Per-run process tracking (.ci/run): when TCR_RUN_DIR is set, every process the tooling supervises is
// recorded there (pid, start time, process group, cleanup folder), and so is every runner process that
// starts one (node.ts names its cgroups and folders after its runner). At the end of a run CI looks at
// exactly these, and at processes whose environment carries this run's TCR_RUN_ID, never at names, so
// two runs on one machine never touch each other's processes.

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat): a PID plus this is unique. */
export function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: count from after it.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Records a supervised process (and this runner) for the run's final check; a no-op outside CI. */
export function registerRunProcess(entry: {
  pid: number;
  name: string;
  cleanupDir?: string | undefined;
}): void {
  const dir = process.env.TCR_RUN_DIR;
  if (!dir) return;
  try {
    mkdirSync(dir, { recursive: true });
    // One line each: "<pid> <start time> <pgid> <kind> <name> [cleanup dir]". The supervised process leads a
    // process group of its own (spawned detached), so its pgid is its pid.
    const line = (pid: number, kind: string, name: string, cleanup = '-') =>
      `${pid} ${startTimeOf(pid) ?? '?'} ${pid} ${kind} ${name.replaceAll(' ', '_')} ${cleanup}\n`;
    appendFileSync(path.join(dir, 'processes'), line(entry.pid, 'supervised', entry.name, entry.cleanupDir));
    appendFileSync(path.join(dir, 'runners'), `${process.pid} ${startTimeOf(process.pid) ?? '?'}\n`);
  } catch {
    // Tracking is CI's safety net: never a reason to fail starting the process itself.
  }
}
