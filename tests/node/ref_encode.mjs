// ref_encode.mjs - the independent reference for tests/bpe_parity.py: encodes texts with
// @lenml/tokenizers (transformers.js's tokenizers) from a Hugging Face tokenizer.json.
//
//   node ref_encode.mjs DIR CASES OUT
// DIR holds tokenizer.json and tokenizer_config.json; CASES has one text per line as hex bytes.
// A JS string cannot hold invalid UTF-8: each text is decoded with TextDecoder (WHATWG: every
// maximal invalid subpart becomes U+FFFD). OUT gets one line per text: the hex of that decoded
// text's UTF-8 (what the ids stand for), a tab, the ids separated by spaces. Special-token
// spellings in the text are parsed (as transformers.js always does); no BOS/EOS is added.
import { readFileSync, writeFileSync } from 'node:fs';
import { TokenizerLoader } from '@lenml/tokenizers';

const [dir, casesPath, outPath] = process.argv.slice(2);
if (!outPath) {
    console.error('usage: node ref_encode.mjs DIR CASES OUT');
    process.exit(2);
}
const tokenizer = TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(readFileSync(`${dir}/tokenizer.json`, 'utf8')),
    tokenizerConfig: JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, 'utf8')),
});
const decoder = new TextDecoder('utf-8');
const out = [];
for (const line of readFileSync(casesPath, 'utf8').split('\n')) {
    if (line === '') continue;
    const text = decoder.decode(Buffer.from(line, 'hex'));
    const ids = tokenizer.encode(text, { add_special_tokens: false });
    out.push(Buffer.from(text, 'utf8').toString('hex') + '\t' + ids.join(' '));
}
writeFileSync(outPath, out.join('\n') + '\n');
