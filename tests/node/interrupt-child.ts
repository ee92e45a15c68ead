// Ctrl-C in a test: runs the CLI in a child process and sends it SIGINT once it is well into its work.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const CLI = path.resolve('dist/cli.js');

/**
 * Runs `remax ...args` and sends SIGINT once `file` holds at least `lines` complete lines (the command's own log of
 * its steps); resolves with its exit code and stderr. Rejects if the command ends before that.
 */
export function interruptAfterLines(args: string[], file: string, lines: number): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args]);
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d) => (stderr += d));
    const poll = setInterval(() => {
      if (sent || !existsSync(file)) return;
      if (readFileSync(file, 'utf8').split('\n').length - 1 < lines) return;
      sent = true;
      child.kill('SIGINT');
    }, 10);
    child.on('close', (code) => {
      clearInterval(poll);
      if (!sent) reject(new Error(`remax ${args[0]} ended (code ${code}) before it was interrupted: ${stderr}`));
      else resolve({ code, stderr });
    });
  });
}
