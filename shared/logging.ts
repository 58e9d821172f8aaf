import { type Logger, pino } from 'pino';

/**
 * Paths that may carry credentials, censored wherever they appear in a log line. Code should never log
 * them in the first place; this is the second line of defence.
 */
export const REDACT_PATHS = [
  'password',
  'token',
  'secretKey',
  'auth',
  '*.password',
  '*.token',
  '*.secretKey',
  '*.auth',
  '*.docker.password',
  '*.spec.docker.password',
  '*.data',
  '*.stringData',
  '*[".dockerconfigjson"]',
  'headers.authorization',
  '*.headers.authorization',
];

export function createLogger(
  name: string,
  level = process.env.LOG_LEVEL ?? 'info',
  destination?: pino.DestinationStream,
): Logger {
  const options = {
    name,
    level,
    base: { component: name },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };
