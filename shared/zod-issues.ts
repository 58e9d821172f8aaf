import type { z } from 'zod';

// The one formatting of zod's issues for error messages: `path: message; path: message`. zod's own
// z.prettifyError writes one issue per line with arrows, which does not fit a log line or a CR's status.

export interface IssueFormat {
  /** What an issue without a path is about (default: nothing, so `: message`). */
  root?: string;
  /** How a path is written (default: its parts joined with dots). */
  path?: (path: readonly PropertyKey[]) => string;
}

/** Every issue as `path: message`, joined with `; ` (messages name fields, never values). */
export function describeIssues(issues: readonly z.core.$ZodIssue[], format: IssueFormat = {}): string {
  return issues
    .map((i) => {
      const where = format.path ? format.path(i.path) : i.path.map(String).join('.');
      return `${where || (format.root ?? '')}: ${i.message}`;
    })
    .join('; ');
}
