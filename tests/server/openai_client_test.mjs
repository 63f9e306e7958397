// The official openai client against glrnn-server (run by openai_client_test.sh): lists the
// models, streams a chat completion and checks it against the same request unstreamed, makes a
// text completion, gets a json_schema reply and tool calls (streamed and not, read by the
// client's own accumulation of deltas), and sees a bad request come back as the client's 400.
import OpenAI from 'openai';

const fail = (message) => {
  console.error(`openai client test: FAILED: ${message}`);
  process.exit(1);
};

const client = new OpenAI({ baseURL: process.argv[2], apiKey: 'not-needed' });

const models = [];
for await (const model of await client.models.list()) models.push(model.id);
if (models.length !== 1 || models[0] !== 'griffin-demo') fail(`models.list() gave ${JSON.stringify(models)}`);

const request = {
  model: models[0],
  messages: [{ role: 'user', content: 'He looked at the old house and' }],
  max_tokens: 16,
  temperature: 0,
};
const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
let text = '';
let chunks = 0;
let finish = null;
let usage = null;
for await (const chunk of stream) {
  ++chunks;
  if (chunk.object !== 'chat.completion.chunk') fail(`a chunk of object ${chunk.object}`);
  if (chunk.usage) usage = chunk.usage;
  for (const choice of chunk.choices) {
    text += choice.delta?.content ?? '';
    if (choice.finish_reason) finish = choice.finish_reason;
  }
}
if (chunks < 3 || text.length === 0) fail(`the stream had ${chunks} chunks and text ${JSON.stringify(text)}`);
if (finish !== 'stop' && finish !== 'length') fail(`finish_reason ${finish}`);
if (!usage || usage.prompt_tokens <= 0 || typeof usage.prompt_tokens_details?.cached_tokens !== 'number') {
  fail(`usage ${JSON.stringify(usage)}`);
}

const whole = await client.chat.completions.create(request);
if (whole.choices[0].message.content !== text) {
  fail(`unstreamed ${JSON.stringify(whole.choices[0].message.content)} != streamed ${JSON.stringify(text)}`);
}

const completion = await client.completions.create({ model: models[0], prompt: 'The president', max_tokens: 5, temperature: 0 });
if (completion.choices.length !== 1 || typeof completion.choices[0].text !== 'string') fail(`completion ${JSON.stringify(completion)}`);

// A reply that follows a JSON Schema.
const schema = {
  type: 'object',
  properties: { title: { type: 'string', maxLength: 24 }, year: { type: 'integer', minimum: 1900, maximum: 2100 } },
  required: ['title', 'year'],
  additionalProperties: false,
};
const bookRequest = {
  model: models[0],
  messages: [{ role: 'user', content: 'Name a book as JSON.' }],
  max_tokens: 200,
  temperature: 0.7,
  seed: 3,
  response_format: { type: 'json_schema', json_schema: { name: 'book', schema, strict: true } },
};
const structured = await client.chat.completions.create(bookRequest);
const book = JSON.parse(structured.choices[0].message.content);
const streamedBook = await client.chat.completions.create({ ...bookRequest, stream: true });
let streamedText = '';
for await (const chunk of streamedBook) streamedText += chunk.choices[0]?.delta?.content ?? '';
if (streamedText !== structured.choices[0].message.content) {
  fail(`streamed json_schema reply ${JSON.stringify(streamedText)} != ${JSON.stringify(structured.choices[0].message.content)}`);
}
if (typeof book.title !== 'string' || !Number.isInteger(book.year) || book.year < 1900 || book.year > 2100 ||
    Object.keys(book).length !== 2) {
  fail(`json_schema reply ${structured.choices[0].message.content}`);
}

// Tool calls, not streamed and streamed (the client's stream helper assembles the deltas).
const tools = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 16 } }, required: ['city'], additionalProperties: false },
  },
}];
const toolRequest = {
  model: models[0],
  messages: [{ role: 'user', content: 'What is the weather in Oslo?' }],
  max_tokens: 120,
  temperature: 0,
  tools,
  tool_choice: 'required',
  parallel_tool_calls: false,
};
const called = await client.chat.completions.create(toolRequest);
const call = called.choices[0].message.tool_calls?.[0];
if (called.choices[0].finish_reason !== 'tool_calls' || call?.function?.name !== 'get_weather' ||
    typeof JSON.parse(call.function.arguments).city !== 'string') {
  fail(`tool call reply ${JSON.stringify(called.choices[0])}`);
}
const runner = client.beta.chat.completions.stream({ ...toolRequest, stream: true });
const streamedCall = (await runner.finalChatCompletion()).choices[0];
const streamedFunction = streamedCall.message.tool_calls?.[0]?.function;
if (streamedCall.finish_reason !== 'tool_calls' || streamedFunction?.name !== call.function.name ||
    streamedFunction?.arguments !== call.function.arguments) {
  fail(`streamed tool call ${JSON.stringify(streamedCall)} != ${JSON.stringify(call)}`);
}

try {
  await client.chat.completions.create({ ...request, temperature: 5 });
  fail('temperature 5 was accepted');
} catch (error) {
  if (!(error instanceof OpenAI.APIError) || error.status !== 400) fail(`a bad request gave ${error}`);
}

console.log(`openai client test: ok (model ${models[0]}, ${chunks} chunks, ${JSON.stringify(text)}, finish ${finish}; ` +
            `json_schema ${JSON.stringify(book)}; tool call ${call.function.arguments})`);
