/**
 * The Datasets section: the catalog across runners, filtered by text and tag; pick datasets and
 * a package, and insert a ready `%%federate` cell for them.
 */
import { Button, HTMLSelect, InputGroup, searchIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { DEFAULT_PACKAGE, planFederate, renderFederateCell } from '../federate';
import { allTags, datasetShape, matchesDataset, planSummary, policySummary } from '../format';
import { describeError } from '../handler';
import { FedModel } from '../model';
import { IDataset, IPackage } from '../tokens';
import { Empty, ErrorNote, Loading, useModel } from './common';

export interface IDatasetsViewProps {
  model: FedModel;
  /** Put the cell text into the active notebook (or a new one). */
  insertCell: (text: string) => Promise<void>;
}

const keyOf = (d: IDataset): string => `${d.runner}/${d.name}`;

/** Columns and policy of one dataset, shown when its row is expanded. */
function DatasetDetails(props: { model: FedModel; dataset: IDataset }): JSX.Element {
  const { model, dataset } = props;
  const [policy, setPolicy] = React.useState<string | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  React.useEffect(() => {
    let live = true;
    model.policy(dataset.runner, dataset.name).then(
      p => live && setPolicy(policySummary(p, dataset.num_columns)),
      err => live && setError(`policy unavailable: ${describeError(err)}`)
    );
    return () => {
      live = false;
    };
  }, [model, dataset.runner, dataset.name, dataset.num_columns]);
  return (
    <div className="jp-Fed-details">
      <div className="jp-Fed-detailsLabel">Columns</div>
      <div className="jp-Fed-columns">
        {dataset.columns.map(c => (
          <span key={c.name} className="jp-Fed-column" title={`${c.dtype}${c.role === 'id' ? ', identifier' : ''}`}>
            {c.name}
            <span className="jp-Fed-muted"> {c.role === 'id' ? 'id' : c.dtype}</span>
          </span>
        ))}
      </div>
      <div className="jp-Fed-detailsLabel">Policy</div>
      {error ? (
        <ErrorNote message={error} />
      ) : (
        <div className="jp-Fed-policy">{policy ?? 'Loading…'}</div>
      )}
    </div>
  );
}

function DatasetRow(props: {
  model: FedModel;
  dataset: IDataset;
  picked: boolean;
  open: boolean;
  onPick: (key: string) => void;
  onOpen: (key: string) => void;
  onTag: (tag: string) => void;
}): JSX.Element {
  const { model, dataset, picked, open, onPick, onOpen, onTag } = props;
  const key = keyOf(dataset);
  return (
    <li className={`jp-Fed-item jp-Fed-dataset${picked ? ' jp-mod-selected' : ''}`} data-dataset={key}>
      <input
        type="checkbox"
        className="jp-Fed-check"
        checked={picked}
        aria-label={`Use ${key} in the %%federate cell`}
        onChange={() => onPick(key)}
      />
      <div className="jp-Fed-itemBody">
        <button
          type="button"
          className="jp-Fed-itemTitle jp-Fed-link"
          aria-expanded={open}
          onClick={() => onOpen(key)}
        >
          <span className="jp-Fed-name">{dataset.name}</span>
          <span className="jp-Fed-badge">{dataset.runner}</span>
        </button>
        {dataset.description && <div className="jp-Fed-description">{dataset.description}</div>}
        <div className="jp-Fed-muted">{datasetShape(dataset)}</div>
        {dataset.tags.length > 0 && (
          <div className="jp-Fed-tags">
            {dataset.tags.map(tag => (
              <button type="button" key={tag} className="jp-Fed-tag" onClick={() => onTag(tag)}>
                {tag}
              </button>
            ))}
          </div>
        )}
        {open && <DatasetDetails model={model} dataset={dataset} />}
      </div>
    </li>
  );
}

/** The package the cell is for: one of those the coordinator runs, ffnet by default. */
function PackageSelect(props: {
  packages: ReadonlyArray<IPackage>;
  value: IPackage;
  error: string | null;
  onChange: (name: string) => void;
}): JSX.Element {
  const { packages, value, error, onChange } = props;
  const id = React.useId();
  const kind = value.rounds ? 'trains over rounds' : 'one-shot analytics';
  const unavailable = error ? `\n(package list unavailable: ${error})` : '';
  return (
    <div className="jp-Fed-packagePicker">
      <label htmlFor={id} className="jp-Fed-packageLabel">
        Package
      </label>
      <HTMLSelect
        id={id}
        className="jp-Fed-package"
        value={value.name}
        title={`${value.name}: ${value.description} (${kind})${unavailable}`}
        onChange={e => onChange(e.target.value)}
        options={packages.map(p => p.name)}
      />
    </div>
  );
}

export function DatasetsView(props: IDatasetsViewProps): JSX.Element {
  const { model, insertCell } = props;
  useModel(model, ['datasets', 'packages']);
  const [query, setQuery] = React.useState('');
  const [tag, setTag] = React.useState<string | null>(null);
  const [picked, setPicked] = React.useState<ReadonlySet<string>>(new Set());
  const [open, setOpen] = React.useState<string | null>(null);
  const [insertError, setInsertError] = React.useState<string | null>(null);
  const [inserting, setInserting] = React.useState(false);
  const [packageName, setPackageName] = React.useState(DEFAULT_PACKAGE);

  const catalog = model.datasets;
  const tags = allTags(catalog);
  const shown = catalog.filter(d => matchesDataset(d, query) && (tag === null || d.tags.includes(tag)));
  const pickedDatasets = catalog.filter(d => picked.has(keyOf(d)));
  const packages = model.packages;
  const pkg =
    packages.find(p => p.name === packageName) ??
    packages.find(p => p.name === DEFAULT_PACKAGE) ??
    packages[0];
  const plan = planFederate(pickedDatasets, catalog, { package: pkg });

  const toggle = (key: string): void => {
    const next = new Set(picked);
    if (!next.delete(key)) {
      next.add(key);
    }
    setPicked(next);
  };

  const insert = async (): Promise<void> => {
    if (typeof plan === 'string') {
      return;
    }
    setInserting(true);
    setInsertError(null);
    try {
      await insertCell(renderFederateCell(plan));
    } catch (err) {
      setInsertError(`could not insert the cell: ${describeError(err)}`);
    } finally {
      setInserting(false);
    }
  };

  return (
    <div className="jp-Fed-section jp-Fed-datasets">
      <ErrorNote message={model.datasetsError} />
      {model.catalogErrors.map(e => (
        <ErrorNote key={e.runner} message={`${e.runner}: ${e.message}`} />
      ))}
      <div className="jp-Fed-filter">
        <InputGroup
          type="search"
          placeholder="Filter datasets"
          title="Matches names, runners, descriptions, tags and column names"
          aria-label="Filter datasets"
          value={query}
          onChange={e => setQuery(e.target.value)}
          rightIcon={searchIcon}
        />
      </div>
      {tags.length > 0 && (
        <div className="jp-Fed-tags jp-Fed-tagFilter" role="group" aria-label="Filter by tag">
          {tags.map(t => (
            <button
              type="button"
              key={t}
              aria-pressed={tag === t}
              className={`jp-Fed-tag${tag === t ? ' jp-mod-active' : ''}`}
              onClick={() => setTag(tag === t ? null : t)}
            >
              {t}
            </button>
          ))}
        </div>
      )}
      {!model.loaded('datasets') ? (
        <Loading what="the catalog" />
      ) : catalog.length === 0 && !model.datasetsError ? (
        <Empty>No datasets: connect a runner first.</Empty>
      ) : shown.length === 0 ? (
        <Empty>No dataset matches the filter.</Empty>
      ) : null}
      <ul className="jp-Fed-list">
        {shown.map(d => (
          <DatasetRow
            key={keyOf(d)}
            model={model}
            dataset={d}
            picked={picked.has(keyOf(d))}
            open={open === keyOf(d)}
            onPick={toggle}
            onOpen={key => setOpen(open === key ? null : key)}
            onTag={t => setTag(t)}
          />
        ))}
      </ul>
      {catalog.length > 0 && (
        <div className="jp-Fed-footer">
          <div className="jp-Fed-muted jp-Fed-plan">
            {typeof plan === 'string' ? plan : planSummary(plan, picked.size === 0)}
          </div>
          <div className="jp-Fed-insertRow">
            <PackageSelect
              packages={packages}
              value={pkg}
              error={model.packagesError}
              onChange={setPackageName}
            />
            <Button
              small
              className="jp-mod-styled jp-mod-accept jp-Fed-insert"
              disabled={typeof plan === 'string' || inserting}
              onClick={insert}
              title={`Insert a %%federate ${pkg.name} cell for these datasets into the active notebook`}
            >
              Insert %%federate cell
            </Button>
          </div>
          <ErrorNote message={insertError} />
        </div>
      )}
    </div>
  );
}
