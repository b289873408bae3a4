import { describe, expect, it } from 'vitest';
import type { QueryResult } from './query-result.ts';
import { renderCsv, renderNdjson, uniqueNames } from './result-formats.ts';

const result: QueryResult = {
  columns: [{ name: 'page', type: 'VARCHAR' }, { name: 'n', type: 'BIGINT' }, { name: 'tags', type: 'VARCHAR[]' }, { name: 'n', type: 'INTEGER' }],
  rows: [
    ['/a,b', 1, ['x', 'y'], null],
    ['say "hi"\r\nbye', '9007199254740993', null, 2],
    ['', 0, [], 3],
  ],
  truncated: false,
};

describe('renderCsv', () => {
  it('writes RFC 4180: header, CRLF, quotes doubled, fields with separators quoted, NULL empty, "" for the empty string', () => {
    expect(renderCsv(result)).toBe(
      'page,n,tags,n\r\n"/a,b",1,"[""x"",""y""]",\r\n"say ""hi""\r\nbye",9007199254740993,,2\r\n"",0,[],3\r\n',
    );
  });

  it('writes the header alone for no rows', () => {
    expect(renderCsv({ ...result, rows: [] })).toBe('page,n,tags,n\r\n');
  });
});

describe('renderNdjson', () => {
  it('writes one object per row, repeated column names made unique', () => {
    expect(renderNdjson(result).split('\n')).toEqual([
      '{"page":"/a,b","n":1,"tags":["x","y"],"n_1":null}',
      '{"page":"say \\"hi\\"\\r\\nbye","n":"9007199254740993","tags":null,"n_1":2}',
      '{"page":"","n":0,"tags":[],"n_1":3}',
      '',
    ]);
    expect(renderNdjson({ ...result, rows: [] })).toBe('');
  });

  it('never makes a unique name collide with an existing one', () => {
    expect(uniqueNames(['a', 'a_1', 'a', 'a'])).toEqual(['a', 'a_1', 'a_2', 'a_3']);
  });
});
