// The `remax` command line.
import { RemaxInputError } from '../core/errors';
import { enableRelaxedSimd } from './load';
import { generateCommand } from './commands/generate';
import { logprobsCommand } from './commands/logprobs';
import { initCommand } from './commands/init';
import { gradCommand } from './commands/grad';
import { sftCommand } from './commands/sft';
import { rmCommand } from './commands/rm';
import { trainCommand } from './commands/train';
import { plotCommand } from './commands/plot';
import { serveCommand } from './commands/serve';
import { serveRewardCommand } from './commands/serve-reward';
import { tokenizeCommand } from './commands/tokenize';
import { exportCommand } from './commands/export';

/** A command; it may return its exit code (an interrupted run: 128 + the signal), else 0. */
type Command = (argv: string[], out: (line: string) => void, err: (line: string) => void) => Promise<void | number>;

const COMMANDS: Record<string, { run: Command; summary: string }> = {
  train: { run: trainCommand, summary: 'ReMax training against a reward (no flags: the built-in default task)' },
  plot: { run: plotCommand, summary: "self-contained HTML report (charts) of one or more training runs' metrics" },
  generate: { run: generateCommand, summary: 'generate text or token ids from a model (Hugging Face, GGUF or llama2.c; batched, seeded)' },
  tokenize: { run: tokenizeCommand, summary: "token ids and pieces of a text or a chat prompt with a model's tokenizer" },
  export: { run: exportCommand, summary: 'write a model as a Hugging Face folder, a GGUF file or a llama2.c checkpoint' },
  logprobs: { run: logprobsCommand, summary: 'teacher-forced per-token log-probabilities of a sequence' },
  init: { run: initCommand, summary: 'write a randomly initialised model: llama2.c of given sizes, or a Hugging Face folder --like a config.json' },
  sft: { run: sftCommand, summary: 'fine-tune or pre-train with the token cross-entropy, checkpoints that resume exactly' },
  rm: { run: rmCommand, summary: 'train a reward model (scalar head) on preference pairs (Bradley–Terry), checkpoints that resume exactly' },
  serve: { run: serveCommand, summary: 'the in-browser trainer page on 127.0.0.1 (training runs in a Web Worker)' },
  'serve-reward': { run: serveRewardCommand, summary: 'serve a reward over HTTP to trainers elsewhere (remax train --reward-url, OpenRLHF --remote_rm_url)' },
  grad: { run: gradCommand, summary: 'ReMax loss of a batch and the gradient of every weight (safetensors)' },
};

const USAGE = `Usage: remax <command> [flags]   (remax <command> --help for its flags)\n\n` +
  Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`).join('\n') + '\n';

/** Runs the CLI and returns the exit code: 0 ok, 2 bad input (one line on stderr), 1 internal error, 128 + n after signal n. */
export async function main(argv: string[], out = (l: string) => console.log(l), err = (l: string) => console.error(l)): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    out(USAGE);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    err(`remax: unknown command "${name}"; commands: ${Object.keys(COMMANDS).join(', ')}`);
    return 2;
  }
  try {
    return (await command.run(rest, out, err)) ?? 0;
  } catch (error) {
    if (error instanceof RemaxInputError) {
      err(`remax ${name}: error: ${error.message}`);
      return 2;
    }
    err(`remax ${name}: internal error: ${(error as Error).stack ?? error}`);
    return 1;
  }
}

enableRelaxedSimd();
main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
